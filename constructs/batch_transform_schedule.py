"""A scheduled batch transform job: EventBridge Scheduler calls sagemaker:CreateTransformJob."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns

import constructs.acknowledge as nag
from constructs import Construct
from constructs.served_model import ServedModel

# EventBridge Scheduler's universal target for the SageMaker API (the SDK's operation name).
CREATE_TRANSFORM_JOB_TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:createTransformJob"
# Replaced by Scheduler at each attempt: a unique id, so each run has its own job name and output.
EXECUTION_ID = "<aws.scheduler.execution-id>"
MAX_JOB_NAME = 63


def transform_job_request(
    *,
    job_name_prefix: str,
    model_name: str,
    input_uri: str,
    output_uri: str,
    instance_type: str,
    instance_count: int,
    key_arn: str,
) -> dict[str, Any]:
    """The CreateTransformJob request the schedule sends (tests check it against botocore's
    SageMaker model): every CSV file under `input_uri`, one record per line, scored in
    mini-batches, results (`probability,label` per line) under `output_uri/<execution id>/`."""
    return {
        "TransformJobName": f"{job_name_prefix}-{EXECUTION_ID}",
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": f"{output_uri.rstrip('/')}/{EXECUTION_ID}/",
            "Accept": "text/csv",
            "AssembleWith": "Line",
            "KmsKeyId": key_arn,
        },
        "TransformResources": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeKmsKeyId": key_arn,
        },
        "DataProcessing": {"JoinSource": "None"},
    }


class BatchTransformSchedule(Construct):
    """A nightly (any `schedule`) scoring of every file under `input_uri` with `model`, besides
    the pipeline's own Transform step.

    `AWS::Scheduler::Schedule` (L1) with the universal target for CreateTransformJob; the job
    name is `<job_name_prefix>-<execution id>` (unique per attempt), the output goes under
    `<output_uri>/<execution id>/`, encrypted with `key`.  The schedule's role may only create
    transform jobs named with the prefix, pass the model's role to SageMaker, and let SageMaker
    use the key for the job's volumes.  A failed job publishes to `failure_topic` (an
    EventBridge rule on SageMaker's job state changes).

    Exposes `schedule`, `role`, `request` (the request as sent, with tokens) and `failure_rule`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        job_name_prefix: str,
        model: ServedModel,
        schedule: str,
        input_uri: str,
        output_uri: str,
        instance_type: str,
        instance_count: int,
        key: kms.IKey,
        failure_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id)
        if len(job_name_prefix) + 1 + 16 > MAX_JOB_NAME:  # Scheduler's execution ids are 16 characters
            raise ValueError(
                f"BatchTransformSchedule: job_name_prefix {job_name_prefix!r} leaves no room for the run id"
            )
        stack = Stack.of(self)
        sagemaker_arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"EventBridge Scheduler: start the {job_name_prefix} batch transform jobs",
        )
        jobs = f"{sagemaker_arn}:transform-job/{job_name_prefix}-*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="CreateThisTransformJob",
                actions=["sagemaker:CreateTransformJob"],
                resources=[jobs],
                conditions={"StringEquals": {"sagemaker:VolumeKmsKey": key.key_arn}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PassTheModelRole",
                actions=["iam:PassRole"],
                resources=[model.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="VolumeKeyGrantForSageMaker",
                actions=["kms:CreateGrant", "kms:DescribeKey"],
                resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        nag.acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "Transform jobs this schedule starts are named <prefix>-<scheduler execution id>, chosen at "
            "run time; creation is limited to that prefix and to the data key for volumes.",
            f"AwsSolutions-IAM5[Resource::{jobs}]",
        )
        nag.acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "The schedule role's own policy, kept with the one role it belongs to.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )
        self.request = transform_job_request(
            job_name_prefix=job_name_prefix,
            model_name=model.model_name,
            input_uri=input_uri,
            output_uri=output_uri,
            instance_type=instance_type,
            instance_count=instance_count,
            key_arn=key.key_arn,
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=f"{job_name_prefix}-batch-transform",
            description=f"Score every file under {input_uri} with the served model",
            schedule_expression=schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=CREATE_TRANSFORM_JOB_TARGET,
                role_arn=self.role.role_arn,
                input=stack.to_json_string(self.request),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
                ),
            ),
        )
        self.schedule.node.add_dependency(self.role)
        self.failure_rule: events.Rule | None = None
        if failure_topic is not None:
            self.failure_rule = events.Rule(
                self,
                "JobFailed",
                description=f"A {job_name_prefix} batch transform job failed",
                event_pattern=events.EventPattern(
                    source=["aws.sagemaker"],
                    detail_type=["SageMaker Transform Job State Change"],
                    detail={
                        "TransformJobStatus": ["Failed"],
                        "TransformJobName": events.Match.prefix(f"{job_name_prefix}-"),
                    },
                ),
                targets=[targets.SnsTopic(failure_topic)],
            )
