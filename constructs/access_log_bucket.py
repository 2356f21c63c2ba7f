"""The bucket that receives S3 server access logs of an environment's other buckets."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3

import constructs.acknowledge as nag
from constructs import Construct
from constructs.secure_bucket import MINIMUM_TLS_VERSION


class AccessLogBucket(Construct):
    """TLS 1.2+ only, public access blocked, versioned; logs expire after `retention_days` and a
    deleted or overwritten log stays recoverable for `noncurrent_version_days`.

    Encryption is SSE-S3, not the customer key: S3 server access logging cannot deliver to a
    bucket whose default encryption is SSE-KMS.  Exposes `bucket`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str,
        retention_days: int,
        noncurrent_version_days: int,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=MINIMUM_TLS_VERSION,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=Duration.days(retention_days),
                    noncurrent_version_expiration=Duration.days(noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.bucket,
            "S3 server access logging only delivers to buckets encrypted with SSE-S3, not SSE-KMS.",
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
        )
        nag.acknowledge(
            self.bucket,
            "Access logs are an audit copy with a fixed retention; replicating them is not required.",
            "NIST.800.53.R5-S3BucketReplicationEnabled",
        )
