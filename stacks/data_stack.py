"""The environment's key and buckets."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack

from config import Environment, ProjectConfig
from constructs import Construct
from constructs.access_log_bucket import AccessLogBucket
from constructs.encryption_key import EncryptionKey
from constructs.secure_bucket import SecureBucket

# Buckets whose data cannot be recomputed; they get a replica when replication is on.
REPLICATED = ("raw", "curated", "artifacts")
ACCESS_LOG_RETENTION_DAYS = 365


class DataStack(Stack):
    """KMS key; buckets for raw data, curated data (and the Feature Store offline store), model
    artifacts, inference capture, monitoring output, and their server access logs.

    Exposes `key` and one `s3.Bucket` per purpose: `raw`, `curated`, `artifacts`, `capture`,
    `monitoring`, `access_logs`.
    """

    def __init__(
        self, scope: Construct, id: str, *, config: ProjectConfig, environment: Environment, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        env = environment
        self.key = EncryptionKey(
            self,
            "DataKey",
            alias=f"{config.prefix(env)}-data",
            description=f"{config.prefix(env)}: data, models, logs and Feature Store",
            allow_cloudwatch_logs=True,
        ).key
        self.access_logs = AccessLogBucket(
            self,
            "AccessLogs",
            bucket_name=config.bucket_name(env, "access-logs"),
            retention_days=ACCESS_LOG_RETENTION_DAYS,
        ).bucket

        def bucket(purpose: str, expire_after_days: int | None = None) -> SecureBucket:
            replicate = env.replication and purpose in REPLICATED
            return SecureBucket(
                self,
                purpose.capitalize(),
                bucket_name=config.bucket_name(env, purpose),
                key=self.key,
                access_log_bucket=self.access_logs,
                expire_after_days=expire_after_days,
                replica_bucket_name=config.bucket_name(env, f"{purpose}-replica") if replicate else None,
                no_replication_reason=(
                    f"Replication is off for environment {env.name} (environments.{env.name}.replication)."
                    if purpose in REPLICATED
                    else f"{purpose} data is recomputed or expires after its retention; it is not replicated."
                ),
            ).bucket

        self.raw = bucket("raw")
        self.curated = bucket("curated")
        self.artifacts = bucket("artifacts")
        self.capture = bucket("capture", env.retention.capture_days)
        self.monitoring = bucket("monitoring", env.retention.monitoring_days)
