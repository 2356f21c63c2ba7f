"""The environment's keys and buckets."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_s3 as s3

from config import Environment, ProjectConfig
from constructs import Construct
from constructs.access_log_bucket import AccessLogBucket
from constructs.encryption_key import EncryptionKey
from constructs.secure_bucket import SecureBucket

# Buckets whose data cannot be recomputed; they get a replica when replication is on.
REPLICATED = ("raw", "curated", "artifacts")
ACCESS_LOG_RETENTION_DAYS = 365


def project_log_group_arns(stack: Stack, config: ProjectConfig, env: Environment) -> list[str]:
    """The log groups the environment writes, as ARN patterns: its own `/<project>/<env>/...`
    groups, its Lambda functions (CloudFormation names them after their stack), and the
    account-wide groups SageMaker writes job and endpoint logs to."""
    prefix = config.prefix(env)
    names = [
        f"{log_group_prefix(config, env)}*",
        f"/aws/lambda/{prefix}-*",
        "/aws/sagemaker/ProcessingJobs",
        "/aws/sagemaker/TrainingJobs",
        f"/aws/sagemaker/Endpoints/{prefix}-*",
    ]
    return [
        stack.format_arn(
            service="logs", resource="log-group", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        for name in names
    ]


def log_group_prefix(config: ProjectConfig, env: Environment) -> str:
    """`/<project>/<env>/`: where the environment's own log groups are named."""
    return f"/{config.project}/{env.name}/"


class DataStack(Stack):
    """KMS keys (data; logs); buckets for raw data, curated data (and the Feature Store offline
    store), model artifacts, inference capture, monitoring output, and their server access logs.

    Two keys, so that CloudWatch Logs can use one without any access to the data key: `key`
    (data, models, Feature Store, volumes) and `logs_key` (the project's log groups only, see
    `project_log_group_arns`).  Both are administered by the CloudFormation execution role and
    `environments.<env>.key_admins`, used through IAM policies.  Exposes `key`, `logs_key` and
    one `s3.Bucket` per purpose: `raw`, `curated`, `artifacts`, `capture`, `monitoring`,
    `access_logs`.
    """

    def __init__(
        self, scope: Construct, id: str, *, config: ProjectConfig, environment: Environment, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self._config, self._env = config, environment
        prefix = config.prefix(environment)
        admins = [environment.cfn_execution_role_arn, *environment.key_admins]
        self.key = EncryptionKey(
            self,
            "DataKey",
            alias=f"{prefix}-data",
            description=f"{prefix}: data, models, Feature Store and job volumes",
            admins=admins,
        ).key
        self.logs_key = EncryptionKey(
            self,
            "LogsKey",
            alias=f"{prefix}-logs",
            description=f"{prefix}: the environment's CloudWatch log groups",
            admins=admins,
            log_group_arns=project_log_group_arns(self, config, environment),
        ).key
        self.access_logs = AccessLogBucket(
            self,
            "AccessLogs",
            bucket_name=config.bucket_name(environment, "access-logs"),
            retention_days=ACCESS_LOG_RETENTION_DAYS,
            noncurrent_version_days=environment.retention.noncurrent_version_days,
        ).bucket
        # EventBridge notifications: new raw data is a retraining trigger (stacks/monitoring_stack.py)
        self.raw = self._bucket("raw", events=True)
        self.curated = self._bucket("curated")
        self.artifacts = self._bucket("artifacts")
        # EventBridge notifications: late-label files are validated as they arrive
        self.capture = self._bucket("capture", environment.retention.capture_days, events=True)
        self.monitoring = self._bucket("monitoring", environment.retention.monitoring_days)

    def _bucket(self, purpose: str, expire_after_days: int | None = None, events: bool = False) -> s3.Bucket:
        config, env = self._config, self._env
        replicate = env.replication and purpose in REPLICATED
        return SecureBucket(
            self,
            purpose.capitalize(),
            bucket_name=config.bucket_name(env, purpose),
            key=self.key,
            access_log_bucket=self.access_logs,
            noncurrent_version_days=env.retention.noncurrent_version_days,
            expire_after_days=expire_after_days,
            replica_bucket_name=config.bucket_name(env, f"{purpose}-replica") if replicate else None,
            no_replication_reason=(
                f"Replication is off for environment {env.name} (environments.{env.name}.replication)."
                if purpose in REPLICATED
                else f"{purpose} data is recomputed or expires after its retention; it is not replicated."
            ),
            event_bridge_enabled=events,
        ).bucket
