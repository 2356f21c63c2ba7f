"""Grants on one prefix of a bucket another stack owns (taken by name), scoped as tightly as S3
lets: objects under the prefix, listing only with that prefix, only in the bucket owner's
account, and never a delete.

`bucket.grant_read(role, "prefix/*")` would also give `s3:List*` and `s3:GetBucket*` on the
whole bucket without an `s3:prefix` condition, and `grant_read_write` adds `s3:DeleteObject*`
(which can erase registered model artifacts); these grants do neither.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

READ_ACTIONS = ["s3:GetObject"]
WRITE_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]


def grant_read_prefix(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, sid: str) -> str:
    """Read objects under `prefix/` and list them; returns the objects' ARN pattern."""
    return _grant(grantee, bucket, prefix, sid, READ_ACTIONS)


def grant_read_write_prefix(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, sid: str) -> str:
    """Read, write (new objects or new versions, never deletes) and list under `prefix/`;
    returns the objects' ARN pattern."""
    return _grant(grantee, bucket, prefix, sid, READ_ACTIONS + WRITE_ACTIONS)


def grant_write_prefix(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, sid: str) -> str:
    """Write (new objects or new versions, never deletes) and list under `prefix/`; returns the
    objects' ARN pattern."""
    return _grant(grantee, bucket, prefix, sid, WRITE_ACTIONS)


def grant_read_object(grantee: iam.IGrantable, bucket: s3.IBucket, key: str, sid: str) -> None:
    """Read the one object `key` (for example an asset in the CDK asset bucket)."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid=sid,
            actions=READ_ACTIONS,
            resources=[bucket.arn_for_objects(key)],
            conditions=_in_account(bucket),
        )
    )


def _grant(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, sid: str, actions: list[str]) -> str:
    prefix = prefix.strip("/")
    objects = bucket.arn_for_objects(f"{prefix}/*")
    principal = grantee.grant_principal
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid=f"{sid}Objects", actions=actions, resources=[objects], conditions=_in_account(bucket)
        )
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid=f"{sid}List",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={**_in_account(bucket), "StringLike": {"s3:prefix": [f"{prefix}/*"]}},
        )
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            # SageMaker reads the bucket's region before it reads or writes a job's data.
            sid=f"{sid}Location",
            actions=["s3:GetBucketLocation"],
            resources=[bucket.bucket_arn],
            conditions=_in_account(bucket),
        )
    )
    return objects


def _in_account(bucket: s3.IBucket) -> dict[str, dict[str, str]]:
    """The bucket is taken by name; bucket names are global, so also require that it belongs to
    the stack's account (a deleted and re-created name elsewhere gets nothing)."""
    return {"StringEquals": {"s3:ResourceAccount": Stack.of(bucket).account}}
