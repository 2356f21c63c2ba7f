"""The environment's monitoring loop for its endpoint: the scheduled monitor, its alarms,
topic and dashboard, the retraining triggers, and optional Model Monitor schedules."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from config import REPO_ROOT, Environment, ProjectConfig
from constructs import Construct
from constructs.alarm_topic import AlarmTopic
from constructs.label_intake import LabelIntake
from constructs.labeling_workteam import LabelingWorkteam
from constructs.model_monitor_schedules import ModelMonitorSchedules
from constructs.monitor_job_role import MonitorJobRole
from constructs.monitoring_alarms import MonitoringAlarms
from constructs.monitoring_jobs import MonitoringJobs, window_hours
from constructs.retraining_trigger import RetrainingTrigger
from constructs.step_image import StepImage
from constructs.vpc_function import FunctionLogs
from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.monitor.emf import NAMESPACE

VARIANT = "AllTraffic"


def capture_prefix(endpoint_name: str) -> str:
    """Where data capture lands in the capture bucket (the serving stack's convention)."""
    return f"datacapture/{endpoint_name}/{VARIANT}"


def ground_truth_prefix(endpoint_name: str) -> str:
    """Where late labels go, in Model Monitor's ground-truth format (pipeline_steps/monitor/labels.py)."""
    return f"ground-truth/{endpoint_name}"


class MonitoringStack(Stack):
    """Inputs are typed and computed from config until the serving stack exposes them: the
    endpoint name (the model package group's name), the capture bucket and prefix.

    Exposes `topic`, `image`, `job_role`, `jobs`, `alarms`, `retraining`, `label_intake`,
    `model_monitor` and
    `labeling` (each None unless configured).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ProjectConfig,
        environment: Environment,
        spec: FeatureSpec,
        endpoint_name: str,
        model_package_group: str,
        pipeline_name: str,
        capture_bucket_name: str,
        monitoring_bucket_name: str,
        artifact_bucket_name: str,
        raw_bucket_name: str,
        raw_prefix: str,
        key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        function_logs: FunctionLogs,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        env = environment
        capture = s3.Bucket.from_bucket_name(self, "CaptureBucket", capture_bucket_name)
        monitoring = s3.Bucket.from_bucket_name(self, "MonitoringBucket", monitoring_bucket_name)
        artifacts = s3.Bucket.from_bucket_name(self, "ArtifactBucket", artifact_bucket_name)
        monitoring_prefix = f"monitoring/{endpoint_name}"
        baseline_prefix = f"{monitoring_prefix}/model-monitor/baseline"

        # The project's alarm topic: encrypted with the data key, which lets CloudWatch alarms of
        # this endpoint (names start with the endpoint's) publish.
        self.topic = AlarmTopic(
            self,
            "Alerts",
            topic_name=f"{endpoint_name}-monitoring",
            key=key,
            alarm_name_prefix=f"{endpoint_name}-",
        ).topic
        self.image = StepImage(self, "MonitorImage", step="monitor", repo_root=REPO_ROOT)
        self.job_role = MonitorJobRole(
            self,
            "JobRole",
            endpoint_name=endpoint_name,
            capture_bucket=capture,
            capture_prefix=capture_prefix(endpoint_name),
            ground_truth_prefix=ground_truth_prefix(endpoint_name),
            monitoring_bucket=monitoring,
            monitoring_prefix=monitoring_prefix,
            artifact_bucket=artifacts,
            artifact_prefix=pipeline_name,
            key=key,
            image=self.image.asset,
            vpc=vpc,
        )
        thresholds = env.thresholds
        arguments = ["--drift-psi", str(thresholds.drift_psi), "--drift-share", str(thresholds.drift_share)]
        arguments += ["--auc-floor", str(thresholds.auc_floor)]
        for name, psi in sorted(thresholds.drift_psi_features.items()):
            arguments += ["--psi", f"{name}={psi}"]
        self.jobs = MonitoringJobs(
            self,
            "Monitor",
            endpoint_name=endpoint_name,
            model_package_group=model_package_group,
            model_package_version=env.model_package_version,
            schedule_expression=env.schedules.monitoring,
            capture_bucket=capture,
            capture_prefix=capture_prefix(endpoint_name),
            ground_truth_prefix=ground_truth_prefix(endpoint_name),
            label_lookback_hours=env.monitoring.label_lookback_hours,
            monitoring_bucket=monitoring,
            monitoring_prefix=monitoring_prefix,
            model_monitor_baseline_prefix=baseline_prefix if env.monitoring.model_monitor else None,
            artifact_bucket=artifacts,
            artifact_prefix=pipeline_name,
            key=key,
            image_uri=self.image.image_uri,
            job_role=self.job_role.role,
            instance_type=env.instances.processing,
            monitor_arguments=arguments,
            metric_namespace=NAMESPACE,
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            logs=function_logs,
        )
        self.alarms = MonitoringAlarms(
            self,
            "Alarms",
            endpoint_name=endpoint_name,
            namespace=NAMESPACE,
            period_hours=window_hours(env.schedules.monitoring),
            drift_share=thresholds.drift_share,
            auc_floor=thresholds.auc_floor,
            topic=self.topic,
            dashboard_name=f"{endpoint_name}-monitoring",
        )
        self.retraining = RetrainingTrigger(
            self,
            "Retraining",
            pipeline_name=pipeline_name,
            cooldown_hours=env.monitoring.retraining_cooldown_hours,
            schedule_expression=env.schedules.retraining,
            raw_bucket_name=raw_bucket_name,
            raw_prefix=raw_prefix,
            alarms=self.alarms.retraining_alarms,
            key=key,
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            logs=function_logs,
        )
        self.label_intake = LabelIntake(
            self,
            "LabelIntake",
            endpoint_name=endpoint_name,
            capture_bucket=capture,
            ground_truth_prefix=ground_truth_prefix(endpoint_name),
            positive_labels_json=json.dumps([str(v) for v in spec.positive_labels]),
            metric_namespace=NAMESPACE,
            key=key,
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            logs=function_logs,
        )
        self.labeling: LabelingWorkteam | None = None
        if env.monitoring.labeling_workteam:
            self.labeling = LabelingWorkteam(
                self,
                "Labeling",
                name=f"{config.prefix(env)}-reviewers",
                topic=self.topic,
                description=f"Reviewers of borderline decisions of {endpoint_name}",
            )
        self.model_monitor: ModelMonitorSchedules | None = None
        if env.monitoring.model_monitor:
            self.model_monitor = ModelMonitorSchedules(
                self,
                "ModelMonitor",
                endpoint_name=endpoint_name,
                baseline_uri=f"s3://{monitoring_bucket_name}/{baseline_prefix}",
                ground_truth_uri=f"s3://{capture_bucket_name}/{ground_truth_prefix(endpoint_name)}",
                output_uri=f"s3://{monitoring_bucket_name}/{monitoring_prefix}/model-monitor/reports",
                schedule_expression=env.schedules.monitoring,
                role=self.job_role.role,
                key_arn=key.key_arn,
                instance_type=env.instances.processing,
                subnet_ids=[s.subnet_id for s in subnets],
                security_group_id=security_group.security_group_id,
            )
