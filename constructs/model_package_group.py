"""A SageMaker Model Registry model package group."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnTag, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct

# What registering a model version takes besides CreateModelPackage; no update (approval), no delete.
REGISTER_SUPPORT_ACTIONS = ["sagemaker:DescribeModelPackage", "sagemaker:AddTags"]
READ_ACTIONS = [
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:ListModelPackages",
]


class ModelPackageGroup(Construct):
    """`AWS::SageMaker::ModelPackageGroup` named `name`: the registry the model-build pipeline
    registers each trained model version in.  Registered models are lineage (a credit model's
    history), so the group follows `removal_policy` (retained in prod).

    Exposes `resource` (the L1), `name`, `arn` and `packages_arn` (every model package version
    in the group), both from `Stack.format_arn`; `grant_register` (create versions, optionally
    only with one approval status) and `grant_read`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        description: str,
        removal_policy: RemovalPolicy,
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
        self.resource.apply_removal_policy(removal_policy)
        self.name = name
        # SageMaker writes resource names in lower case in its ARNs.
        self.arn = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=name.lower()
        )
        self.packages_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{name.lower()}/*"
        )

    def grant_register(self, grantee: iam.IGrantable, *, approval_status: str | None = None) -> iam.Grant:
        """Register new model versions in this group.  With `approval_status`, IAM refuses any
        CreateModelPackage whose ModelApprovalStatus is not exactly that (for example
        PendingManualApproval where a person approves): the pipeline's own parameters cannot
        approve a model."""
        resources = [self.arn, self.packages_arn]
        create = iam.PolicyStatement(
            sid="CreateModelVersions",
            actions=["sagemaker:CreateModelPackage"],
            resources=resources,
            # Only CreateModelPackage carries sagemaker:ModelApprovalStatus (Service Authorization
            # Reference); on the other actions the condition would never match.
            conditions=(
                {"StringEquals": {"sagemaker:ModelApprovalStatus": approval_status}}
                if approval_status
                else None
            ),
        )
        grantee.grant_principal.add_to_principal_policy(create)
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=REGISTER_SUPPORT_ACTIONS, resource_arns=resources
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Describe the group and list and describe its versions (deployment, review)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=READ_ACTIONS, resource_arns=[self.arn, self.packages_arn]
        )
