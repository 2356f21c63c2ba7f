"""The environment's private network."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_kms as kms

from config import Environment, ProjectConfig
from constructs import Construct
from constructs.network import Network
from stacks.data_stack import log_group_prefix
from stacks.removal import removal_policy


def aws_image_repositories(environment: Environment) -> list[str]:
    """The repositories of AWS's images the environment's jobs run on: the Spark processing
    image where Preprocess runs on Spark."""
    if not environment.preprocess.spark:
        return []
    from workflow.definition.spark_step import spark_repository_arn

    return [spark_repository_arn(environment.region, environment.partition)]


class NetworkStack(Stack):
    """A created VPC (private isolated subnets, endpoints with policies, flow logs) or an
    imported one, per config.  Exposes `network` (a constructs.network.Network).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ProjectConfig,
        environment: Environment,
        log_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        vpc = environment.vpc
        common: dict[str, Any] = {
            "log_key": log_key,
            "s3_prefix_list_id": vpc.s3_prefix_list_id,
            "bucket_prefix": config.prefix(environment),
            "log_group_name": f"{log_group_prefix(config, environment)}vpc-flow-logs",
            "log_retention_days": environment.retention.log_days,
            "removal_policy": removal_policy(environment),
            # Explicit zones (<region>a, b, ... or the imported ones) so synth needs no AWS lookup.
            "availability_zones": vpc.zones(environment.region),
            # Jobs on AWS's own images pull them through the ECR endpoints too.
            "aws_image_repositories": aws_image_repositories(environment),
        }
        if vpc.mode == "create":
            self.network = Network(self, "Network", cidr=vpc.cidr, **common)
        else:
            self.network = Network(
                self,
                "Network",
                vpc_id=vpc.vpc_id,
                subnet_ids=vpc.subnet_ids,
                endpoint_security_group_id=vpc.endpoint_security_group_id,
                **common,
            )
