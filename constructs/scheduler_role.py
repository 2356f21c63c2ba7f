"""The role an EventBridge Scheduler schedule runs its target with, trusted only by that one
schedule of this account (aws:SourceAccount and aws:SourceArn)."""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler

from constructs import Construct
from constructs.vpc_function import VpcFunction


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


def function_schedule(
    scope: Construct,
    *,
    schedule_name: str,
    role_description: str,
    description: str,
    schedule_expression: str,
    key: kms.IKey,
    function: VpcFunction,
    payload: dict[str, str],
) -> tuple[scheduler.CfnSchedule, iam.Role]:
    """An EventBridge schedule (`Schedule`, UTC, encrypted with `key`) that invokes `function`
    with `payload`, retried for an hour, then sent to the function's dead-letter queue; its
    role (`SchedulerRole`) may invoke that function, use the key and send to that queue only."""
    role = scheduler_role(scope, "SchedulerRole", schedule_name=schedule_name, description=role_description)
    function.function.grant_invoke(role)
    key.grant_encrypt_decrypt(role)  # the schedule is encrypted with the data key
    function.dead_letter_queue.grant_send_messages(role)
    schedule = scheduler.CfnSchedule(
        scope,
        "Schedule",
        name=schedule_name,
        description=description,
        schedule_expression=schedule_expression,
        schedule_expression_timezone="UTC",
        flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        kms_key_arn=key.key_arn,
        target=scheduler.CfnSchedule.TargetProperty(
            arn=function.function.function_arn,
            role_arn=role.role_arn,
            input=json.dumps(payload),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
            ),
            dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                arn=function.dead_letter_queue.queue_arn
            ),
        ),
    )
    return schedule, role
