"""A serverless SageMaker endpoint."""

from __future__ import annotations

from aws_cdk import aws_sagemaker as sagemaker

import constructs.acknowledge as nag
from constructs import Construct
from constructs.inference_endpoint import VARIANT_NAME, InferenceEndpoint
from constructs.served_model import ServedModel

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)


class ServerlessEndpoint(InferenceEndpoint):
    """Serverless endpoint: `memory_mb`, `max_concurrency` and optional
    `provisioned_concurrency` (kept warm; autoscaled by `EndpointAutoscaling`).

    SageMaker's exclusions are enforced here: the model must have no VPC config and no network
    isolation (checked on the L1), and there is no data capture.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        model: ServedModel,
        memory_mb: int,
        max_concurrency: int,
        provisioned_concurrency: int = 0,
    ) -> None:
        super().__init__(scope, id, endpoint_name=endpoint_name)
        if memory_mb not in MEMORY_SIZES_MB:
            raise ValueError(
                f"ServerlessEndpoint: memory_mb {memory_mb}: expected one of {list(MEMORY_SIZES_MB)}"
            )
        if not 0 <= provisioned_concurrency <= max_concurrency:
            raise ValueError("ServerlessEndpoint: provisioned_concurrency must be in [0, max_concurrency]")
        if model.resource.vpc_config is not None or model.resource.enable_network_isolation:
            raise ValueError(
                "ServerlessEndpoint: serverless endpoints take no VPC config and no network isolation"
            )
        self.provisioned_concurrency = provisioned_concurrency
        config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=model.model_name,
                    serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=memory_mb,
                        max_concurrency=max_concurrency,
                        provisioned_concurrency=provisioned_concurrency or None,
                    ),
                )
            ],
        )
        nag.acknowledge(
            config,
            "KmsKeyId encrypts the storage volumes of endpoint instances; a serverless endpoint has no "
            "instances or volumes of its own (SageMaker manages its compute).",
            "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
        )
        self._create_endpoint(config)
