"""The label-intake Lambda against moto: a label file is validated as it arrives, rejected
lines are kept with their reason, counts become metrics; the same rules as the monitor."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from workflow.functions.label_intake import handler

REGION = "eu-west-1"
BUCKET = "mlops-dev-capture-x"
KEY = "ground-truth/mlops-dev-merchant-credit/2026/11/30/12/labels.jsonl"
ENV = {
    "POSITIVE_LABELS": json.dumps(["1"]),
    "KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000",
    "METRIC_NAMESPACE": "MLOps/ModelMonitoring",
}


def line(event_id: str | None, data: str) -> str:
    meta = {"eventId": event_id} if event_id else {}
    return json.dumps({"groundTruthData": {"data": data, "encoding": "CSV"}, "eventMetadata": meta})


@pytest.fixture
def aws(monkeypatch):
    for k, v in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield {"s3": s3, "cloudwatch": boto3.client("cloudwatch", region_name=REGION)}


def event(key: str) -> dict:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key}},
    }


def test_rejected_lines_are_kept_with_reasons_and_counted(aws):
    body = "\n".join(
        [line("a", "1"), line("b", "0"), line("c", "1,0,1"), line(None, "1"), line("d", "maybe"), "{x"]
    )
    aws["s3"].put_object(Bucket=BUCKET, Key=KEY, Body=body.encode())
    report = handler.intake(event(KEY), ENV, aws)
    assert report["accepted"] == 3 and report["rejected"] == 3
    assert report["rejected_by_reason"] == {
        "no eventId": 1,
        "label 'maybe' is not an outcome": 1,
        "not JSON": 1,
    }
    relative = KEY[len("ground-truth/") :]
    kept = (
        aws["s3"].get_object(Bucket=BUCKET, Key=f"ground-truth-rejected/{relative}")["Body"].read().decode()
    )
    rows = [json.loads(r) for r in kept.splitlines()]
    assert [r["line"] for r in rows] == [4, 5, 6] and all(r["reason"] and r["text"] for r in rows)
    saved = json.loads(
        aws["s3"].get_object(Bucket=BUCKET, Key=f"ground-truth-validated/{relative}.json")["Body"].read()
    )
    assert saved == report
    assert (
        aws["s3"].get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == body.encode()
    )  # the file stays whole
    names = {
        m["MetricName"] for m in aws["cloudwatch"].list_metrics(Namespace="MLOps/ModelMonitoring")["Metrics"]
    }
    assert names == {"AcceptedLabels", "RejectedLabels"}


def test_other_objects_are_skipped(aws):
    assert handler.intake(event("ground-truth-validated/x.json"), ENV, aws)["skipped"] == "not a label file"
