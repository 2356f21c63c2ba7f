"""A CloudWatch log group the project declares itself: named, KMS-encrypted, with a retention."""

from __future__ import annotations

from typing import cast

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct


class EncryptedLogGroup(Construct):
    """`log_group_name` (a string, or a token such as `/aws/lambda/<function name>`) encrypted
    with `key`, events kept `retention_days` (one of CloudWatch's allowed values; config checks
    it), removed or retained with its stack per `removal_policy`.

    Declaring the groups that services would otherwise create on first write is what gives them
    a retention and a key.  Exposes `log_group` (a `logs.LogGroup`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        log_group_name: str,
        key: kms.IKey,
        retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=log_group_name,
            encryption_key=key,
            removal_policy=removal_policy,
        )
        # The L2 takes a RetentionDays enum; config holds the number CloudFormation takes.
        cast(logs.CfnLogGroup, self.log_group.node.default_child).retention_in_days = retention_days
