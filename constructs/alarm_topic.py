"""An SNS topic encrypted with a customer-managed key that CloudWatch alarms can publish to."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

from constructs import Construct


class AlarmTopic(Construct):
    """`sns.Topic` named `topic_name`, encrypted with `key`, TLS-only.  CloudWatch publishes to
    an encrypted topic only if the key lets it, so the key's policy gets one statement for
    alarms of this account and region whose names start with `alarm_name_prefix` (the
    confused-deputy conditions CloudWatch supports), and the topic policy allows the same.

    EventBridge rules may publish too: CDK's `targets.SnsTopic` adds the topic policy and the
    key statement for events.amazonaws.com itself (EventBridge's KMS calls carry no source
    conditions, so that statement has none).

    `key` must be a key created in this app (its policy can be changed).  Exposes `topic`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        topic_name: str,
        key: kms.IKey,
        alarm_name_prefix: str,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        alarms_arn = (
            f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:{alarm_name_prefix}*"
        )
        conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": alarms_arn},
        }
        self.topic = sns.Topic(self, "Topic", topic_name=topic_name, master_key=key, enforce_ssl=True)
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        added = key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"CloudWatchAlarms{''.join(part.capitalize() for part in topic_name.split('-'))}",
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions=conditions,
            )
        )
        if not added.statement_added:
            raise ValueError(
                "AlarmTopic: the key's policy cannot be changed (an imported key); give a key of this app"
            )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisEndpoint",
                principals=[cloudwatch],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )
