"""A SageMaker Model Registry model package group."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnTag, Stack
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct


class ModelPackageGroup(Construct):
    """`AWS::SageMaker::ModelPackageGroup` named `name`: the registry the model-build pipeline
    registers each trained model version in.

    Exposes `resource` (the L1), `name`, `arn` and `packages_arn` (every model package version
    in the group), both built with the stack's partition, region and account.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        description: str,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.resource = sagemaker.CfnModelPackageGroup(
            self,
            "Resource",
            model_package_group_name=name,
            model_package_group_description=description,
            tags=[CfnTag(key=k, value=v) for k, v in sorted((tags or {}).items())] or None,
        )
        self.name = name
        # SageMaker writes resource names in lower case in its ARNs.
        prefix = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        self.arn = f"{prefix}:model-package-group/{name.lower()}"
        self.packages_arn = f"{prefix}:model-package/{name.lower()}/*"
