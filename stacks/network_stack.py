"""The environment's private network."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_kms as kms

from config import Environment
from constructs import Construct
from constructs.network import Network


class NetworkStack(Stack):
    """A created VPC (private isolated subnets, endpoints, flow logs) or an imported one, per
    config.  Exposes `network` (a constructs.network.Network).
    """

    def __init__(
        self, scope: Construct, id: str, *, environment: Environment, key: kms.IKey, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        vpc = environment.vpc
        if vpc.mode == "create":
            # Explicit zones (<region>a, b, ...) so synth needs no AWS lookup.
            zones = vpc.zones(environment.region)
            self.network = Network(self, "Network", key=key, cidr=vpc.cidr, availability_zones=zones)
        else:
            self.network = Network(
                self,
                "Network",
                key=key,
                vpc_id=vpc.vpc_id,
                subnet_ids=vpc.subnet_ids,
                availability_zones=vpc.availability_zones,
                create_endpoints=False,  # an existing VPC brings its own endpoints
            )
