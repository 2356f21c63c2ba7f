"""A SageMaker model: one model package version of a registry group, or a multi-model prefix."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct


def model_package_arn(scope: Construct, group_name: str, version: int) -> str:
    """`arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>`, built from
    config alone (no registry lookup at synth), so the template names the version it serves."""
    if version < 1:
        raise ValueError(f"model package version {version}: versions start at 1")
    return Stack.of(scope).format_arn(
        service="sagemaker", resource="model-package", resource_name=f"{group_name.lower()}/{version}"
    )


class ServedModel(Construct):
    """`AWS::SageMaker::Model` (L1) in one of two forms:

    - `model_package_arn`: the package's own inference specification (the serve image and the
      model artifacts it was registered with): what a version of the registry group serves;
    - `image_uri` + `model_data_prefix`: a multi-model container over every `model.tar.gz`
      under the prefix (`Mode: MultiModel`).

    In the VPC (`subnets`, `security_group`) with network isolation unless told otherwise
    (serverless endpoints take neither).  The model is unnamed: a new version is a new model
    (CloudFormation replaces it), which the endpoint then rolls out to.

    Exposes `resource`, `model_name` and `role`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role: iam.IRole,
        model_package_arn: str | None = None,
        image_uri: str | None = None,
        model_data_prefix: str | None = None,
        subnets: Sequence[ec2.ISubnet] = (),
        security_group: ec2.ISecurityGroup | None = None,
        network_isolation: bool = True,
        environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        if (model_package_arn is None) == (image_uri is None):
            raise ValueError("ServedModel: give either model_package_arn or image_uri (+ model_data_prefix)")
        if image_uri is not None and not (model_data_prefix or "").endswith("/"):
            raise ValueError("ServedModel: a multi-model container needs model_data_prefix ending in '/'")
        if bool(subnets) != (security_group is not None):
            raise ValueError("ServedModel: give subnets and security_group together, or neither")
        if model_package_arn is not None:
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=model_package_arn, environment=environment
            )
        else:
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                model_data_url=model_data_prefix,
                mode="MultiModel",
                environment=environment,
            )
        vpc_config = (
            sagemaker.CfnModel.VpcConfigProperty(
                security_group_ids=[security_group.security_group_id],
                subnets=[subnet.subnet_id for subnet in subnets],
            )
            if security_group is not None
            else None
        )
        self.role = role
        self.resource = sagemaker.CfnModel(
            self,
            "Resource",
            execution_role_arn=role.role_arn,
            primary_container=container,
            vpc_config=vpc_config,
            enable_network_isolation=network_isolation,
        )
        self.resource.node.add_dependency(role)  # the role's policy exists before SageMaker checks it
        self.model_name = self.resource.attr_model_name
        self.model_package_arn = model_package_arn
