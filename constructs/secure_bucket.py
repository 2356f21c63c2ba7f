"""An S3 bucket with the project's security defaults."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

import constructs.acknowledge as nag
from constructs import Construct


class SecureBucket(Construct):
    """KMS (customer key) encryption, TLS only, all public access blocked, versioning, server
    access logs, optional lifecycle expiry and optional replication, retained on stack delete.

    Exposes `bucket` and, when `replica_bucket_name` is given, `replica` (a SecureBucket that
    receives every object, encrypted with the same key).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str,
        key: kms.IKey,
        access_log_bucket: s3.IBucket,
        expire_after_days: int | None = None,
        replica_bucket_name: str | None = None,
        no_replication_reason: str = "",
    ) -> None:
        super().__init__(scope, id)
        # Every bucket is versioned (cheap, and protects against overwrite); expiry also
        # expires old versions so versioning does not keep expired data alive.
        rules = [
            s3.LifecycleRule(
                id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
            )
        ]
        if expire_after_days is not None:
            rules.append(
                s3.LifecycleRule(
                    id="expire-after-retention",
                    expiration=Duration.days(expire_after_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            )
        self.replica: SecureBucket | None = None
        replication_rules = None
        if replica_bucket_name:
            self.replica = SecureBucket(
                self,
                "Replica",
                bucket_name=replica_bucket_name,
                key=key,
                access_log_bucket=access_log_bucket,
                expire_after_days=expire_after_days,
                no_replication_reason="This bucket is itself the replica of its parent bucket.",
            )
            replication_rules = [
                s3.ReplicationRule(
                    id="replicate-all",  # an explicit id keeps the synth deterministic
                    destination=self.replica.bucket,
                    kms_key=key,
                    sse_kms_encrypted_objects=True,
                    delete_marker_replication=False,
                    priority=0,
                )
            ]
        self.bucket: s3.Bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix=f"{bucket_name}/",
            lifecycle_rules=rules,
            replication_rules=replication_rules,
            removal_policy=RemovalPolicy.RETAIN,
        )
        if self.replica is not None:
            self._acknowledge_replication_role()
        if replication_rules is None:
            nag.acknowledge(
                self.bucket,
                no_replication_reason
                or "Replication is a per-environment option (environments.<env>.replication); "
                "it is off here.",
                "NIST.800.53.R5-S3BucketReplicationEnabled",
            )

    def _acknowledge_replication_role(self) -> None:
        """The role CDK creates for replication gets CDK's own grants on the two buckets and the key."""
        assert self.replica is not None
        stack = Stack.of(self)
        policy = self.bucket.node.find_child("ReplicationRole").node.find_child("DefaultPolicy")
        source = stack.get_logical_id(self.bucket.node.default_child)
        replica = stack.get_logical_id(self.replica.bucket.node.default_child)
        nag.acknowledge(
            policy,
            "S3 replication reads every object version of the source bucket and writes replicas of "
            "any key into its replica bucket; the resources are exactly those two buckets' objects.",
            f"AwsSolutions-IAM5[Resource::<{source}.Arn>/*]",
            f"AwsSolutions-IAM5[Resource::<{replica}.Arn>/*]",
        )
        nag.acknowledge(
            policy,
            "CDK's grant on the one data key for replicating SSE-KMS objects "
            "(decrypt source, re-encrypt replica).",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
        )
        nag.acknowledge(
            policy,
            "CDK generates this policy for the replication role it creates and owns; "
            "it lives and dies with that role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )
