"""A customer-managed KMS key with rotation, an alias, and administration split from use."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct

# What a key administrator may do: manage the key's life, policy, rotation, aliases and tags,
# never encrypt or decrypt with it.
ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
# What this account's IAM policies may grant their principals (grant_* writes those policies).
USE_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# What CloudWatch Logs needs to encrypt a log group with the key.
LOGS_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


class EncryptionKey(Construct):
    """CMK for one environment, retained on stack deletion (deleting it would make every
    retained object unreadable).  Exposes `key` and `alias`.

    The key policy has no `kms:*` for the account: `admins` (ARNs; the CloudFormation execution
    role that deploys the key must be one) get the administration actions only; the account's
    IAM policies may grant the use actions, and CreateGrant only for AWS resources (SageMaker
    attaching an encrypted volume).  `log_group_arns`, when given, lets CloudWatch Logs in this
    region use the key for exactly those log groups (ARN patterns), nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        alias: str,
        description: str,
        admins: Sequence[str],
        log_group_arns: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id)
        if not admins:
            raise ValueError("EncryptionKey: give at least the role that deploys the key as an admin")
        policy = iam.PolicyDocument(
            statements=[self._administration(admins), *self._use_through_iam()]
            + ([self._cloudwatch_logs(log_group_arns)] if log_group_arns else [])
        )
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN,
            policy=policy,
        )
        self.alias = self.key.add_alias(f"alias/{alias}")

    @staticmethod
    def _administration(admins: Sequence[str]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="KeyAdministrationNotUse",
            principals=[iam.ArnPrincipal(arn) for arn in admins],
            actions=list(ADMIN_ACTIONS),
            resources=["*"],  # in a key policy "*" means this key
        )

    @staticmethod
    def _use_through_iam() -> list[iam.PolicyStatement]:
        account = iam.AccountRootPrincipal()
        return [
            iam.PolicyStatement(
                sid="UseThroughIamPolicies", principals=[account], actions=list(USE_ACTIONS), resources=["*"]
            ),
            iam.PolicyStatement(
                sid="GrantsOnlyForAwsResources",
                principals=[account],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
        ]

    def _cloudwatch_logs(self, log_group_arns: Sequence[str]) -> iam.PolicyStatement:
        stack = Stack.of(self)
        return iam.PolicyStatement(
            sid="CloudWatchLogsForTheProjectsLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=list(LOGS_ACTIONS),
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": list(log_group_arns)}},
        )
