"""What every SageMaker endpoint construct here shares: the named endpoint and `grant_invoke`."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct

# One production variant per endpoint, named the same in every endpoint config: guarded
# rollouts require the variant name to stay the same across updates, and monitoring reads
# capture under `<endpoint>/<variant>/`.
VARIANT_NAME = "AllTraffic"
INVOKE_ACTIONS = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync")


class InferenceEndpoint(Construct):
    """`AWS::SageMaker::Endpoint` (L1) named `endpoint_name` over an endpoint config that a
    subclass builds.  Exposes `endpoint`, `endpoint_config`, `endpoint_name`, `endpoint_arn`,
    `variant_name`, and `grant_invoke(grantee)`.
    """

    def __init__(self, scope: Construct, id: str, *, endpoint_name: str) -> None:
        super().__init__(scope, id)
        self.endpoint_name = endpoint_name
        self.variant_name = VARIANT_NAME
        self.endpoint_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower()
        )
        self.endpoint_config: sagemaker.CfnEndpointConfig
        self.endpoint: sagemaker.CfnEndpoint

    def _create_endpoint(
        self,
        config: sagemaker.CfnEndpointConfig,
        deployment_config: sagemaker.CfnEndpoint.DeploymentConfigProperty | None = None,
        keep_scaled_capacity: bool = False,
    ) -> None:
        """`keep_scaled_capacity`: an update (a new model version) keeps the instance count and
        weight autoscaling has set, instead of resetting the variant to its initial count in
        the middle of a peak; data capture settings still come from the new config."""
        self.endpoint_config = config
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
            deployment_config=deployment_config,
            retain_all_variant_properties=True if keep_scaled_capacity else None,
            exclude_retained_variant_properties=(
                [sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DataCaptureConfig")]
                if keep_scaled_capacity
                else None
            ),
        )

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` invoke this endpoint (real-time and asynchronous), and nothing else."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(INVOKE_ACTIONS), resource_arns=[self.endpoint_arn]
        )

    def grant_invoke_to_roles(self, role_arns: Sequence[str]) -> iam.ManagedPolicy | None:
        """Invoking for existing roles (ARNs from config): one customer-managed policy, allowing
        only the invoke actions on this endpoint, attached to each role."""
        if not role_arns:
            return None
        roles = [
            iam.Role.from_role_arn(self, f"Invoker{i}", arn, mutable=False) for i, arn in enumerate(role_arns)
        ]
        policy = iam.ManagedPolicy(
            self,
            "InvokePolicy",
            description=f"Invoke the SageMaker endpoint {self.endpoint_name}",
            statements=[iam.PolicyStatement(actions=list(INVOKE_ACTIONS), resources=[self.endpoint_arn])],
        )
        for role in roles:
            policy.attach_to_role(role)
        return policy
