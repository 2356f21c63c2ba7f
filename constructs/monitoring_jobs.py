"""The scheduled monitor: an EventBridge Scheduler schedule invokes the launcher function, which
starts the monitor as a SageMaker Processing job over the last window of captured traffic; the
job's completion event invokes the publisher, which turns its EMF file into CloudWatch metrics.
(Code: workflow/functions/monitoring_jobs/handler.py.)"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

import constructs.acknowledge as nag
from config import REPO_ROOT
from constructs import Construct
from constructs.prefix_access import grant_read_prefix, grant_read_write_prefix
from constructs.scheduler_role import function_schedule
from constructs.vpc_function import FunctionLogs, VpcFunction

CODE = REPO_ROOT / "workflow" / "functions" / "monitoring_jobs"


def window_hours(expression: str) -> int:
    """The monitoring window: the schedule's period for `rate(...)`, a day for `cron(...)`."""
    if expression.startswith("rate("):
        number, unit = expression[5:-1].split()
        return max(1, int(number) * {"minute": 0, "hour": 1, "day": 24}[unit.rstrip("s")] or 1)
    return 24


class MonitoringJobs(Construct):
    """Exposes `launcher`, `publisher` (VpcFunction), `schedule` and `completed_rule`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        model_package_group: str,
        model_package_version: int | None,
        schedule_expression: str,
        capture_bucket: s3.IBucket,
        capture_prefix: str,
        ground_truth_prefix: str,
        label_lookback_hours: int,
        monitoring_bucket: s3.IBucket,
        monitoring_prefix: str,
        model_monitor_baseline_prefix: str | None,
        artifact_bucket: s3.IBucket,
        artifact_prefix: str,
        key: kms.IKey,
        image_uri: str,
        job_role: iam.IRole,
        instance_type: str,
        monitor_arguments: Sequence[str],
        metric_namespace: str,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        logs: FunctionLogs,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        sagemaker_arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        hours = window_hours(schedule_expression)
        common = {"key": key, "vpc": vpc, "subnets": subnets, "security_group": security_group, "logs": logs}
        baseline_uri = (
            f"s3://{monitoring_bucket.bucket_name}/{model_monitor_baseline_prefix}"
            if model_monitor_baseline_prefix
            else ""
        )
        self.launcher = VpcFunction(
            self,
            "Launcher",
            code_dir=CODE,
            handler="handler.launch_handler",
            description=f"Starts the monitor of {endpoint_name} over the last {hours} h of capture",
            environment={
                "ENDPOINT_NAME": endpoint_name,
                "MODEL_PACKAGE_GROUP": model_package_group,
                "MODEL_PACKAGE_VERSION": str(model_package_version or ""),
                "CAPTURE_BUCKET": capture_bucket.bucket_name,
                "CAPTURE_PREFIX": capture_prefix,
                "GROUND_TRUTH_PREFIX": ground_truth_prefix,
                "LABEL_LOOKBACK_HOURS": str(label_lookback_hours),
                "MONITORING_BUCKET": monitoring_bucket.bucket_name,
                "WINDOW_HOURS": str(hours),
                "KMS_KEY_ARN": key.key_arn,
                "INSTANCE_TYPE": instance_type,
                "IMAGE_URI": image_uri,
                "SECURITY_GROUP_ID": security_group.security_group_id,
                "SUBNET_IDS": ",".join(s.subnet_id for s in subnets),
                "MONITOR_ROLE_ARN": job_role.role_arn,
                "METRIC_NAMESPACE": metric_namespace,
                "MONITOR_ARGUMENTS": json.dumps(list(monitor_arguments)),
                "MODEL_MONITOR_BASELINE": baseline_uri,
            },
            **common,
        )
        role = self.launcher.role
        grant_read_prefix(role, capture_bucket, capture_prefix, "ReadCapture")
        grant_read_prefix(role, capture_bucket, ground_truth_prefix, "ReadGroundTruth")
        grant_read_write_prefix(role, monitoring_bucket, monitoring_prefix, "WriteMonitoring")
        if model_monitor_baseline_prefix:
            grant_read_write_prefix(role, monitoring_bucket, model_monitor_baseline_prefix, "WriteBaseline")
        grant_read_prefix(role, artifact_bucket, artifact_prefix, "ReadArtifacts")
        key.grant_encrypt_decrypt(role)
        group_arn = f"{sagemaker_arn}:model-package-group/{model_package_group}"
        packages_arn = f"{sagemaker_arn}:model-package/{model_package_group}/*"
        jobs_arn = f"{sagemaker_arn}:processing-job/{endpoint_name}-mon-*"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FindTheServingModel",
                actions=[
                    "sagemaker:ListModelPackages",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                ],
                resources=[group_arn, packages_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StartMonitorJobsInTheVpcOnly",
                actions=["sagemaker:CreateProcessingJob", "sagemaker:AddTags"],
                resources=[jobs_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "sagemaker:VpcSubnets": [s.subnet_id for s in subnets],
                        "sagemaker:VpcSecurityGroupIds": [security_group.security_group_id],
                        "sagemaker:InstanceTypes": [instance_type],
                    },
                    "Bool": {
                        "sagemaker:NetworkIsolation": "true",
                        "sagemaker:InterContainerTrafficEncryption": "true",
                    },
                    "ArnEquals": {
                        "sagemaker:VolumeKmsKey": key.key_arn,
                        "sagemaker:OutputKmsKey": key.key_arn,
                    },
                    # ForAllValues holds for an absent key: require it present
                    "Null": {"sagemaker:InstanceTypes": "false"},
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="MonitorJobsEncryptWithTheDataKey",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                    "StringEquals": {"kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"},
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SeeMonitorJobs", actions=["sagemaker:DescribeProcessingJob"], resources=[jobs_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassTheJobRole",
                actions=["iam:PassRole"],
                resources=[job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        metrics = iam.PolicyStatement(
            sid="PutMonitoringMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace}},
        )
        role.add_to_policy(metrics)

        self.publisher = VpcFunction(
            self,
            "Publisher",
            code_dir=CODE,
            handler="handler.publish_handler",
            description=f"Publishes the monitor's metrics of {endpoint_name} to CloudWatch",
            environment={"ENDPOINT_NAME": endpoint_name},
            **common,
        )
        grant_read_prefix(self.publisher.role, monitoring_bucket, monitoring_prefix, "ReadMonitoring")
        key.grant_decrypt(self.publisher.role)
        self.publisher.role.add_to_policy(metrics)

        schedule_name = f"{endpoint_name}-monitor"
        self.schedule, schedule_role = function_schedule(
            self,
            schedule_name=schedule_name,
            role_description=f"EventBridge Scheduler: invoke the monitor launcher of {endpoint_name}",
            description=f"Monitor {endpoint_name} ({schedule_expression}, window {hours} h)",
            schedule_expression=schedule_expression,
            key=key,
            function=self.launcher,
            payload={"scheduled_time": "<aws.scheduler.scheduled-time>"},
        )
        self.completed_rule = events.Rule(
            self,
            "JobCompleted",
            description=f"The monitor job of {endpoint_name} completed: publish its metrics",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Processing Job State Change"],
                detail={
                    "ProcessingJobStatus": ["Completed"],
                    "ProcessingJobName": [{"prefix": f"{endpoint_name}-mon-"}],
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.publisher.function,
                    dead_letter_queue=self.publisher.dead_letter_queue,
                    retry_attempts=3,
                )
            ],
        )
        iam5 = "AwsSolutions-IAM5"
        for fn, resources in (
            (
                self.launcher,
                [
                    capture_bucket.arn_for_objects(f"{capture_prefix}/*"),
                    capture_bucket.arn_for_objects(f"{ground_truth_prefix}/*"),
                    monitoring_bucket.arn_for_objects(f"{monitoring_prefix}/*"),
                    artifact_bucket.arn_for_objects(f"{artifact_prefix}/*"),
                    packages_arn,
                    jobs_arn,
                ]
                + (
                    [monitoring_bucket.arn_for_objects(f"{model_monitor_baseline_prefix}/*")]
                    if model_monitor_baseline_prefix
                    else []
                ),
            ),
            (self.publisher, [monitoring_bucket.arn_for_objects(f"{monitoring_prefix}/*")]),
        ):
            nag.acknowledge(
                fn.policy,
                "Named prefixes and name patterns only: capture hours, manifests and reports carry the "
                "hour; model package versions are numbered by SageMaker; monitor jobs are named "
                "<endpoint>-mon-<hour>; PutMetricData takes no resource (condition: the monitoring "
                "namespace).",
                *(f"{iam5}[Resource::{r}]" for r in resources),
            )
        nag.acknowledge(
            self.launcher.policy,
            "grant_encrypt_decrypt on the one data key (named in Resource): the launcher writes the "
            "encrypted window manifest.",
            f"{iam5}[Action::kms:ReEncrypt*]",
            f"{iam5}[Action::kms:GenerateDataKey*]",
        )
        scheduler_policy = schedule_role.node.find_child("DefaultPolicy")
        nag.acknowledge(
            scheduler_policy,
            "Invoke of the one launcher function (its ARN and versions, from grant_invoke), the data key "
            "the schedule is encrypted with, and the launcher's dead-letter queue.",
            f"{iam5}[Resource::<{stack.get_logical_id(self.launcher.function.node.default_child)}.Arn>:*]",
            f"{iam5}[Action::kms:ReEncrypt*]",
            f"{iam5}[Action::kms:GenerateDataKey*]",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )
