"""An S3 bucket with the project's security defaults."""

from __future__ import annotations

from typing import cast

from aws_cdk import CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

import constructs.acknowledge as nag
from constructs import Construct
from constructs.service_trust import restrict_to_source

MINIMUM_TLS_VERSION = 1.2


class SecureBucket(Construct):
    """KMS (customer key) encryption, TLS 1.2+ only, uploads refused unless encrypted with that
    key, all public access blocked, versioning with old versions expiring after
    `noncurrent_version_days`, server access logs, optional expiry of current objects and
    optional replication; retained on stack deletion (a bucket with data is never destroyed by
    a stack operation).

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
        noncurrent_version_days: int,
        expire_after_days: int | None = None,
        replica_bucket_name: str | None = None,
        no_replication_reason: str = "",
        event_bridge_enabled: bool = False,
    ) -> None:
        """`event_bridge_enabled` sends the bucket's object events to EventBridge (set on the
        CloudFormation bucket itself: s3.Bucket's own option adds a custom-resource Lambda)."""
        super().__init__(scope, id)
        self.replica: SecureBucket | None = None
        if replica_bucket_name:
            self.replica = SecureBucket(
                self,
                "Replica",
                bucket_name=replica_bucket_name,
                key=key,
                access_log_bucket=access_log_bucket,
                noncurrent_version_days=noncurrent_version_days,
                expire_after_days=expire_after_days,
                no_replication_reason="This bucket is itself the replica of its parent bucket.",
            )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            minimum_tls_version=MINIMUM_TLS_VERSION,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix=f"{bucket_name}/",
            lifecycle_rules=lifecycle_rules(noncurrent_version_days, expire_after_days),
            replication_rules=self._replication_rules(key),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._deny_uploads_not_encrypted_with(key)
        if event_bridge_enabled:
            cfn_bucket = self.bucket.node.default_child
            cfn_bucket.add_property_override(
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
            )
        if self.replica is not None:
            role = self.bucket.node.find_child("ReplicationRole")
            assert isinstance(role, iam.Role)
            # By name: the bucket's own ARN attribute would make a cycle (bucket -> role -> bucket).
            source = Stack.of(self).format_arn(service="s3", region="", account="", resource=bucket_name)
            restrict_to_source(role, source_arn=source)
            self._acknowledge_replication_role()
        else:
            nag.acknowledge(
                self.bucket,
                no_replication_reason
                or "Replication is a per-environment option (environments.<env>.replication); "
                "it is off here.",
                "NIST.800.53.R5-S3BucketReplicationEnabled",
            )

    def _replication_rules(self, key: kms.IKey) -> list[s3.ReplicationRule] | None:
        if self.replica is None:
            return None
        return [
            s3.ReplicationRule(
                id="replicate-all",  # an explicit id keeps the synth deterministic
                destination=self.replica.bucket,
                kms_key=key,
                sse_kms_encrypted_objects=True,
                # A delete on the source leaves the replica's copy: the point of the replica.
                delete_marker_replication=False,
                priority=0,
            )
        ]

    def _deny_uploads_not_encrypted_with(self, key: kms.IKey) -> None:
        """Uploads without encryption headers get the bucket default (this key); these refuse
        an upload that asks for another algorithm, another key, or aws:kms without a key id
        (which S3 would encrypt with the account's aws/s3 key)."""
        objects = self.bucket.arn_for_objects("*")
        anyone = iam.AnyPrincipal()
        for sid, conditions in (
            (
                "DenyUploadsWithAnotherAlgorithm",
                {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            ),
            (
                "DenyUploadsWithAnotherKey",
                {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key.key_arn}},
            ),
            (
                "DenyUploadsWithTheAwsManagedKey",
                {
                    "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
                },
            ),
        ):
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    principals=[anyone],
                    actions=["s3:PutObject"],
                    resources=[objects],
                    conditions=conditions,
                )
            )

    def _acknowledge_replication_role(self) -> None:
        """The role CDK creates for replication gets CDK's own grants on the two buckets and the key."""
        assert self.replica is not None
        stack = Stack.of(self)
        policy = self.bucket.node.find_child("ReplicationRole").node.find_child("DefaultPolicy")
        source = stack.get_logical_id(cast(CfnElement, self.bucket.node.default_child))
        replica = stack.get_logical_id(cast(CfnElement, self.replica.bucket.node.default_child))
        nag.acknowledge(
            policy,
            "S3 replication reads every object version of the source bucket and writes replicas of "
            "any key into its replica bucket; the resources are exactly those two buckets' objects.",
            f"AwsSolutions-IAM5[Resource::<{source}.Arn>/*]",
            f"AwsSolutions-IAM5[Resource::<{replica}.Arn>/*]",
        )
        nag.acknowledge(
            policy,
            "CDK's grant on the one data key for replicating SSE-KMS objects (decrypt source, "
            "re-encrypt replica).",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
        )
        nag.acknowledge(
            policy,
            "CDK generates this policy for the replication role it creates and owns; it lives and "
            "dies with that role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )


def lifecycle_rules(noncurrent_version_days: int, expire_after_days: int | None) -> list[s3.LifecycleRule]:
    """Abort stale multipart uploads; expire old versions after `noncurrent_version_days` (so
    versioning protects against overwrites without keeping every version forever); expire
    current objects after `expire_after_days` when given (then old versions go a day later)."""
    rules = [
        s3.LifecycleRule(
            id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
        )
    ]
    if expire_after_days is None:
        rules.append(
            s3.LifecycleRule(
                id="expire-old-versions",
                noncurrent_version_expiration=Duration.days(noncurrent_version_days),
            )
        )
    else:
        rules.append(
            s3.LifecycleRule(
                id="expire-after-retention",
                expiration=Duration.days(expire_after_days),
                noncurrent_version_expiration=Duration.days(1),
            )
        )
    return rules
