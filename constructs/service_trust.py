"""Confused-deputy conditions on the trust policy of a role that a construct creates for an AWS
service (a role the project creates itself takes them in its `assumed_by` principal)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam


def restrict_to_source(role: iam.IRole, *, source_arn: str) -> None:
    """The service may assume `role` only on behalf of this account's `source_arn` (an ARN
    pattern): `aws:SourceAccount` and `aws:SourceArn` on the role's one trust statement."""
    cfn = role.node.default_child
    assert isinstance(cfn, iam.CfnRole)
    document: Any = Stack.of(role).resolve(cfn.assume_role_policy_document)
    statements = document["Statement"]
    if len(statements) != 1 or "Service" not in statements[0].get("Principal", {}):
        raise ValueError(f"{role.node.path}: expected one service trust statement, got {statements}")
    cfn.add_property_override(
        "AssumeRolePolicyDocument.Statement.0.Condition",
        {
            "StringEquals": {"aws:SourceAccount": Stack.of(role).account},
            "ArnLike": {"aws:SourceArn": source_arn},
        },
    )
