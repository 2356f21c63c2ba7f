"""The role an EventBridge Scheduler schedule runs its target with, trusted only by that one
schedule of this account (aws:SourceAccount and aws:SourceArn)."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam

from constructs import Construct


def scheduler_role(scope: Construct, id: str, *, schedule_name: str, description: str) -> iam.Role:
    """`schedule_name` is in the default schedule group, where the project's schedules live."""
    stack = Stack.of(scope)
    schedule_arn = stack.format_arn(
        service="scheduler",
        resource="schedule",
        resource_name=f"default/{schedule_name}",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )
    return iam.Role(
        scope,
        id,
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnEquals": {"aws:SourceArn": schedule_arn},
            },
        ),
        description=description,
    )
