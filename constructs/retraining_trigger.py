"""Retraining triggers: a schedule, new raw data (S3 EventBridge notifications on the data
prefix) and the drift and quality alarms all invoke one function, which starts the
model-building pipeline with a `TriggerReason` parameter, applies a cooldown against
retraining storms and records every trigger with its reason and outcome in a DynamoDB table.
(Code: workflow/functions/retraining_trigger/handler.py.)"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

import constructs.acknowledge as nag
from config import REPO_ROOT
from constructs import Construct
from constructs.scheduler_role import function_schedule
from constructs.vpc_function import FunctionLogs, VpcFunction

CODE = REPO_ROOT / "workflow" / "functions" / "retraining_trigger"


class RetrainingTrigger(Construct):
    """Exposes `function` (VpcFunction), `table`, `schedule`, `new_data_rule`, `alarm_rule`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        cooldown_hours: int,
        schedule_expression: str,
        raw_bucket_name: str,
        raw_prefix: str,
        alarms: Sequence[cw.IAlarm],
        key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        logs: FunctionLogs,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.table = dynamodb.TableV2(
            self,
            "Triggers",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.function = VpcFunction(
            self,
            "Function",
            code_dir=CODE,
            handler="handler.lambda_handler",
            description=f"Starts {pipeline_name} for a schedule, new data or an alarm, with a cooldown",
            environment={
                "TRIGGERS_TABLE": self.table.table_name,
                "PIPELINE_NAME": pipeline_name,
                "COOLDOWN_HOURS": str(cooldown_hours),
            },
            key=key,
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            logs=logs,
        )
        fn = self.function.function
        self.table.grant_read_write_data(self.function.role)
        pipeline_arn = (
            f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:pipeline/{pipeline_name}"
        )
        self.function.role.add_to_policy(
            iam.PolicyStatement(
                sid="StartTheModelBuildPipeline",
                actions=["sagemaker:StartPipelineExecution"],
                resources=[pipeline_arn],
            )
        )
        key.grant_encrypt_decrypt(self.function.role)

        schedule_name = f"{pipeline_name}-retraining"
        self.schedule, schedule_role = function_schedule(
            self,
            schedule_name=schedule_name,
            role_description=f"EventBridge Scheduler: scheduled retraining of {pipeline_name}",
            description=f"Scheduled retraining of {pipeline_name} ({schedule_expression})",
            schedule_expression=schedule_expression,
            key=key,
            function=self.function,
            payload={"reason": f"schedule: {schedule_expression}"},
        )
        target = targets.LambdaFunction(
            fn, dead_letter_queue=self.function.dead_letter_queue, retry_attempts=3
        )
        self.new_data_rule = events.Rule(
            self,
            "NewData",
            description=f"New raw data under s3://{raw_bucket_name}/{raw_prefix}/: retrain",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [raw_bucket_name]},
                    "object": {"key": [{"prefix": f"{raw_prefix.strip('/')}/"}]},
                },
            ),
            targets=[target],
        )
        self.alarm_rule = events.Rule(
            self,
            "Alarms",
            description="A drift or quality alarm went to ALARM: retrain",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[a.alarm_arn for a in alarms],
                detail={"state": {"value": ["ALARM"]}},
            ),
            targets=[target],
        )
        iam5 = "AwsSolutions-IAM5"
        nag.acknowledge(
            self.function.policy,
            "grant_read_write_data on the one trigger table (its index ARNs are CDK's pattern) and "
            "grant_encrypt_decrypt on the one data key; the table is named in Resource.",
            f"{iam5}[Action::kms:ReEncrypt*]",
            f"{iam5}[Action::kms:GenerateDataKey*]",
        )
        nag.acknowledge(
            schedule_role.node.find_child("DefaultPolicy"),
            "Invoke of the one trigger function (its ARN and versions, from grant_invoke), the data key "
            "the schedule is encrypted with, and the function's dead-letter queue.",
            f"{iam5}[Resource::<{stack.get_logical_id(fn.node.default_child)}.Arn>:*]",
            f"{iam5}[Action::kms:ReEncrypt*]",
            f"{iam5}[Action::kms:GenerateDataKey*]",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )
