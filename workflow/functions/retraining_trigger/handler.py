"""Retraining trigger: one function for every reason to retrain, with a cooldown.

Events it understands (anything else is recorded as `unknown` and ignored):
- EventBridge Scheduler (`schedules.retraining`): `{"reason": "schedule"}`;
- S3 "Object Created" through EventBridge on the raw bucket's data prefix: `new-data: <key>`;
- CloudWatch "Alarm State Change" to ALARM (drift share, estimated or realized quality,
  data-quality violations): `alarm: <alarm name>`.

Cooldown: a start is allowed when the last one is older than COOLDOWN_HOURS.  The check and
the claim are one conditional write, so triggers firing together start one execution and the
others are recorded as `suppressed`.  Every trigger is recorded (time, reason, outcome,
execution ARN) in TRIGGERS_TABLE, the local demo's file store has the same shape.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

LOCK_KEY = {"pk": "cooldown", "sk": "latest"}
REASON_LIMIT = 256  # pipeline parameter values and descriptions stay short


def trigger_reason(event: dict[str, Any]) -> str:
    if isinstance(event.get("reason"), str) and event["reason"]:
        return event["reason"][:REASON_LIMIT]
    detail = event.get("detail") or {}
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        return f"new-data: s3://{detail.get('bucket', {}).get('name')}/{detail.get('object', {}).get('key')}"[
            :REASON_LIMIT
        ]
    if (
        event.get("source") == "aws.cloudwatch"
        and event.get("detail-type") == "CloudWatch Alarm State Change"
    ):
        state = (detail.get("state") or {}).get("value")
        if state != "ALARM":
            return ""  # back to OK or INSUFFICIENT_DATA: no reason to retrain
        return f"alarm: {detail.get('alarmName')}"[:REASON_LIMIT]
    return "unknown"


class Store(Protocol):
    def claim(self, now: datetime, cooldown: timedelta) -> datetime | None:
        """Takes the cooldown lock; returns None on success, else the last start time."""

    def release(self, previous: datetime | None) -> None: ...

    def record(self, item: dict[str, Any]) -> None: ...


class Starter(Protocol):
    def start(self, reason: str, token: str) -> str:
        """Starts the pipeline; returns the execution ARN (or a local id)."""


@dataclass
class Decision:
    reason: str
    outcome: str  # started | suppressed | ignored | failed
    execution: str | None = None
    detail: str = ""


def handle(
    event: dict[str, Any], store: Store, starter: Starter, cooldown: timedelta, now: datetime
) -> Decision:
    reason = trigger_reason(event)
    token = str(uuid.uuid4())
    if not reason or reason == "unknown":
        decision = Decision(reason or "alarm back to OK", "ignored", detail=json.dumps(event)[:500])
    else:
        last = store.claim(now, cooldown)
        if last is not None:
            until = last + cooldown
            decision = Decision(
                reason,
                "suppressed",
                detail=f"cooldown: last start {last.isoformat()}, until {until.isoformat()}",
            )
        else:
            try:
                decision = Decision(reason, "started", execution=starter.start(reason, token))
            except Exception as err:  # recorded, the lock released, then raised for the retry
                store.release(None)
                store.record(_item(now, Decision(reason, "failed", detail=str(err)[:500]), token))
                raise
    store.record(_item(now, decision, token))
    return decision


def _item(now: datetime, d: Decision, token: str) -> dict[str, Any]:
    item = {
        "pk": "trigger",
        "sk": f"{now.isoformat()}#{token}",
        "reason": d.reason,
        "outcome": d.outcome,
        "detail": d.detail,
    }
    if d.execution:
        item["execution"] = d.execution
    return item


# ---- AWS ---------------------------------------------------------------------------------------
class DynamoStore:
    def __init__(self, table: Any) -> None:
        self.table = table

    def claim(self, now: datetime, cooldown: timedelta) -> datetime | None:
        from botocore.exceptions import ClientError

        try:
            self.table.update_item(
                Key=LOCK_KEY,
                UpdateExpression="SET started_at = :now",
                ConditionExpression="attribute_not_exists(started_at) OR started_at < :cutoff",
                ExpressionAttributeValues={":now": now.isoformat(), ":cutoff": (now - cooldown).isoformat()},
            )
            return None
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        last = self.table.get_item(Key=LOCK_KEY, ConsistentRead=True).get("Item", {}).get("started_at")
        return datetime.fromisoformat(last) if last else now

    def release(self, previous: datetime | None) -> None:
        self.table.delete_item(Key=LOCK_KEY)

    def record(self, item: dict[str, Any]) -> None:
        self.table.put_item(Item=item)


class PipelineStarter:
    def __init__(self, client: Any, pipeline: str) -> None:
        self.client, self.pipeline = client, pipeline

    def start(self, reason: str, token: str) -> str:
        response = self.client.start_pipeline_execution(
            PipelineName=self.pipeline,
            PipelineExecutionDisplayName=f"retrain-{token[:8]}",
            PipelineExecutionDescription=f"Retraining: {reason}"[:3072],
            PipelineParameters=[{"Name": "TriggerReason", "Value": reason}],
            ClientRequestToken=token,
        )
        return response["PipelineExecutionArn"]


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    import boto3

    store = DynamoStore(boto3.resource("dynamodb").Table(os.environ["TRIGGERS_TABLE"]))
    starter = PipelineStarter(boto3.client("sagemaker"), os.environ["PIPELINE_NAME"])
    cooldown = timedelta(hours=float(os.environ.get("COOLDOWN_HOURS", "24")))
    decision = handle(event, store, starter, cooldown, datetime.now(UTC))
    print(
        json.dumps({"reason": decision.reason, "outcome": decision.outcome, "execution": decision.execution})
    )
    return {"reason": decision.reason, "outcome": decision.outcome, "execution": decision.execution}
