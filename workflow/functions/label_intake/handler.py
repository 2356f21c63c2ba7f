"""Label intake: validates a late-label file the moment it lands in the ground-truth prefix.

Event: S3 "Object Created" through EventBridge for `ground-truth/<endpoint>/yyyy/mm/dd/hh/*.jsonl`
in the capture bucket.  Every line is checked with the same rules the monitor applies
(`pipeline_steps/common/ground_truth.py`, packed with this function).  Rejected lines are kept
with their reason under `ground-truth-rejected/<the same key>`; a small report (lines, accepted,
rejected by reason) goes under `ground-truth-validated/<the same key>.json`; the counts become
the AcceptedLabels and RejectedLabels metrics.  The file itself is left as it is (the monitor
skips the same lines, counted), so nothing is lost and no write re-triggers this function.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pipeline_steps.common.ground_truth import LabelError, parse_line

PREFIX = "ground-truth/"


def validate(text: str, positive_labels: list[str]) -> tuple[int, list[dict[str, Any]]]:
    """(accepted lines, rejected lines with their line number and reason)."""
    accepted, rejected = 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parse_line(line, positive_labels)
            accepted += 1
        except LabelError as err:
            rejected.append({"line": number, "reason": str(err), "text": line})
    return accepted, rejected


def intake(event: dict[str, Any], env: dict[str, str], clients: dict[str, Any]) -> dict[str, Any]:
    detail = event["detail"]
    bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    if not key.startswith(PREFIX) or not key.endswith(".jsonl"):
        return {"key": key, "skipped": "not a label file"}
    s3 = clients["s3"]
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
    accepted, rejected = validate(text, json.loads(env["POSITIVE_LABELS"]))
    relative = key[len(PREFIX) :]
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": env["KMS_KEY_ARN"]}
    if rejected:
        body = "\n".join(json.dumps(r) for r in rejected) + "\n"
        s3.put_object(Bucket=bucket, Key=f"ground-truth-rejected/{relative}", Body=body.encode(), **sse)
    reasons = Counter(r["reason"].split(":")[0] for r in rejected)
    report = {
        "key": key,
        "accepted": accepted,
        "rejected": len(rejected),
        "rejected_by_reason": dict(reasons),
    }
    s3.put_object(
        Bucket=bucket, Key=f"ground-truth-validated/{relative}.json", Body=json.dumps(report).encode(), **sse
    )
    endpoint = relative.split("/", 1)[0]
    clients["cloudwatch"].put_metric_data(
        Namespace=env["METRIC_NAMESPACE"],
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                "Timestamp": datetime.now(UTC),
                "Value": float(value),
                "Unit": "Count",
            }
            for name, value in (("AcceptedLabels", accepted), ("RejectedLabels", len(rejected)))
        ],
    )
    return report


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    import boto3

    report = intake(event, dict(os.environ), {n: boto3.client(n) for n in ("s3", "cloudwatch")})
    print(json.dumps(report))
    return report
