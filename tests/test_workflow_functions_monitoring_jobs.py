"""The monitoring-jobs Lambda (launch the monitor over the last window, publish its metrics)
against moto; botocore's client validates each request against the service model first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from pipeline_steps.monitor.emf import emf_lines
from workflow.functions.monitoring_jobs import handler

REGION = "eu-west-1"
ENDPOINT = "mlops-dev-merchant-credit"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
ENV = {
    "ENDPOINT_NAME": ENDPOINT,
    "MODEL_PACKAGE_GROUP": ENDPOINT,
    "CAPTURE_BUCKET": "mlops-dev-capture",
    "CAPTURE_PREFIX": f"datacapture/{ENDPOINT}/AllTraffic",
    "GROUND_TRUTH_PREFIX": f"ground-truth/{ENDPOINT}",
    "MONITORING_BUCKET": "mlops-dev-monitoring",
    "WINDOW_HOURS": "24",
    "LABEL_LOOKBACK_HOURS": "0",
    "KMS_KEY_ARN": KEY,
    "INSTANCE_TYPE": "ml.m5.xlarge",
    "IMAGE_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/monitor:abc",
    "SECURITY_GROUP_ID": "sg-0123456789abcdef0",
    "SUBNET_IDS": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "MONITOR_ROLE_ARN": "arn:aws:iam::123456789012:role/monitor",
    "METRIC_NAMESPACE": "MLOps/ModelMonitoring",
    "MONITOR_ARGUMENTS": json.dumps(["--drift-psi", "0.2", "--drift-share", "0.3"]),
    "MODEL_MONITOR_BASELINE": f"s3://mlops-dev-monitoring/model-monitor/{ENDPOINT}/baseline",
}
NOW = datetime(2026, 11, 30, 12, 5, tzinfo=UTC)


def validate(operation: str, request: dict) -> None:
    shape = (
        botocore.session.get_session().get_service_model("sagemaker").operation_model(operation).input_shape
    )
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


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
        for bucket in ("mlops-dev-capture", "mlops-dev-monitoring", "artifacts"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for name in ("statistics.json", "constraints.json"):
            s3.put_object(Bucket="artifacts", Key=f"run-1/baseline/{name}", Body=b"{}")
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName=ENDPOINT)
        base = "s3://artifacts/run-1"
        for status in ("Approved", "Rejected"):
            sagemaker.create_model_package(
                ModelPackageGroupName=ENDPOINT,
                ModelApprovalStatus=status,
                InferenceSpecification={
                    "Containers": [{"Image": ENV["IMAGE_URI"], "ModelDataUrl": f"{base}/model/model.tar.gz"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                ModelMetrics={
                    "ModelQuality": {
                        "Statistics": {
                            "ContentType": "application/json",
                            "S3Uri": f"{base}/evaluation/evaluation.json",
                        }
                    },
                    "ModelDataQuality": {
                        "Statistics": {
                            "ContentType": "application/json",
                            "S3Uri": f"{base}/baseline/statistics.json",
                        },
                        "Constraints": {
                            "ContentType": "application/json",
                            "S3Uri": f"{base}/baseline/constraints.json",
                        },
                    },
                },
            )
        clients = {n: boto3.client(n, region_name=REGION) for n in ("s3", "sagemaker", "cloudwatch")}
        yield clients


def put_capture(s3, hour: str, name: str = "part.jsonl") -> None:
    s3.put_object(Bucket="mlops-dev-capture", Key=f"{ENV['CAPTURE_PREFIX']}/{hour}/{name}", Body=b"{}\n")


def test_window_prefixes_and_job_name():
    start, end = handler.window(NOW, 24)
    assert (start, end) == (datetime(2026, 11, 29, 12), datetime(2026, 11, 30, 12))
    prefixes = handler.hour_prefixes("datacapture/e/AllTraffic", start, end)
    assert len(prefixes) == 24 and prefixes[0] == "datacapture/e/AllTraffic/2026/11/29/12/"
    assert (
        handler.job_name("x" * 80, end) == "x" * 48 + "-mon-2026113012"
        and len(handler.job_name("x" * 80, end)) == 63
    )


def test_launch_starts_one_processing_job_over_the_window(aws):
    s3 = aws["s3"]
    put_capture(s3, "2026/11/29/11")  # before the window
    put_capture(s3, "2026/11/29/12")
    put_capture(s3, "2026/11/30/11", "a.jsonl")
    put_capture(s3, "2026/11/30/11", "b.jsonl")
    put_capture(s3, "2026/11/30/12")  # the hour still being written: next window
    s3.put_object(
        Bucket="mlops-dev-capture", Key=f"ground-truth/{ENDPOINT}/2026/11/30/09/labels.jsonl", Body=b"{}\n"
    )
    result = handler.launch({"scheduled_time": "2026-11-30T12:05:00Z"}, ENV, aws, NOW)
    assert result == {
        "started": True,
        "job": f"{ENDPOINT}-mon-2026113012",
        "capture_objects": 3,
        "label_objects": 1,
    }
    job = aws["sagemaker"].describe_processing_job(ProcessingJobName=result["job"])
    inputs = {i["InputName"]: i["S3Input"] for i in job["ProcessingInputs"]}
    assert inputs["capture"]["S3DataType"] == "ManifestFile"
    assert inputs["baseline"]["S3Uri"] == "s3://artifacts/run-1/baseline/"
    assert inputs["model"]["S3Uri"].endswith("model.tar.gz")
    bucket, key = handler.split_uri(inputs["capture"]["S3Uri"])
    listed = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert listed[0] == {"prefix": "s3://mlops-dev-capture/"} and len(listed) == 4
    assert all("/2026/11/29/11/" not in k and "/2026/11/30/12/" not in k for k in listed[1:])
    args = job["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--window-end") + 1] == "2026-11-30T12:00:00Z" and "--drift-psi" in args
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True
    # the same baseline files were copied where the optional Model Monitor schedules read them
    names = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket="mlops-dev-monitoring", Prefix="model-monitor/")["Contents"]
    }
    assert names == {
        f"model-monitor/{ENDPOINT}/baseline/statistics.json",
        f"model-monitor/{ENDPOINT}/baseline/constraints.json",
    }
    # a retried invocation does not start a second job
    again = handler.launch({"scheduled_time": "2026-11-30T12:05:00Z"}, ENV, aws, NOW)
    assert again["started"] is False and "already exists" in again["reason"]


def test_processing_request_matches_botocore_model():
    package = {
        "ModelPackageArn": "arn:aws:sagemaker:eu-west-1:1:model-package/g/1",
        "InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://a/model.tar.gz"}]},
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"S3Uri": "s3://a/evaluation.json"}},
            "ModelDataQuality": {
                "Statistics": {"S3Uri": "s3://a/b/statistics.json"},
                "Constraints": {"S3Uri": "s3://a/b/constraints.json"},
            },
        },
    }
    request = handler.processing_request(
        ENV, name="n", end=datetime(2026, 11, 30, 12), package=package,
        capture_manifest="s3://m/c.manifest", labels_manifest="s3://m/l.manifest", output_uri="s3://m/out",
    )  # fmt: skip
    validate("CreateProcessingJob", request)
    package["ModelMetrics"]["ModelDataQuality"]["Constraints"]["S3Uri"] = "s3://elsewhere/constraints.json"
    with pytest.raises(ValueError, match="two places"):
        handler.processing_request(
            ENV, name="n", end=datetime(2026, 11, 30, 12), package=package,
            capture_manifest="s3://m/c", labels_manifest=None, output_uri="s3://m/out",
        )  # fmt: skip


def test_empty_window_starts_nothing_and_publishes_zero_records(aws):
    result = handler.launch({"scheduled_time": "2026-11-30T12:05:00Z"}, ENV, aws, NOW)
    assert result["started"] is False and "empty window" in result["reason"]
    stats = aws["cloudwatch"].get_metric_statistics(
        Namespace=ENV["METRIC_NAMESPACE"], MetricName="Records",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}],
        StartTime=datetime(2026, 11, 29), EndTime=datetime(2026, 12, 1), Period=3600, Statistics=["Sum"],
    )  # fmt: skip
    assert [p["Sum"] for p in stats["Datapoints"]] == [0.0]


def test_no_approved_version_is_a_clear_error(aws):
    put_capture(aws["s3"], "2026/11/30/10")
    env = {**ENV, "MODEL_PACKAGE_GROUP": "missing-group"}
    aws["sagemaker"].create_model_package_group(ModelPackageGroupName="missing-group")
    with pytest.raises(LookupError, match="no Approved version"):
        handler.launch({"scheduled_time": "2026-11-30T12:05:00Z"}, env, aws, NOW)


def test_publish_puts_the_emf_metrics(aws):
    summary = {
        "records": 1200,
        "capture": {"rejected_lines": 3},
        "data_quality": {"violations": 2},
        "drift": {"share": 0.4, "drifted_features": 8, "prediction": None},
        "quality": {"estimated": {"auc": 0.81}, "realized": None},
        "attribution": {},
        "bias": {},
    }
    stamp = int(datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp() * 1000)
    body = "\n".join(emf_lines(summary, ENDPOINT, stamp)) + "\n"
    aws["s3"].put_object(
        Bucket="mlops-dev-monitoring", Key="monitoring/x/report/metrics.emf.jsonl", Body=body.encode()
    )
    event = {
        "detail": {
            "ProcessingJobStatus": "Completed",
            "ProcessingOutputConfig": {
                "Outputs": [{"S3Output": {"S3Uri": "s3://mlops-dev-monitoring/monitoring/x/report"}}]
            },
        }
    }
    assert handler.publish(event, aws) == {"published": 6}
    listed = aws["cloudwatch"].list_metrics(Namespace="MLOps/ModelMonitoring")["Metrics"]
    assert {m["MetricName"] for m in listed} == {
        "Records",
        "RejectedCaptureLines",
        "DataQualityViolations",
        "DriftShare",
        "DriftedFeatures",
        "EstimatedAUC",
    }
    assert handler.publish({"detail": {"ProcessingJobStatus": "Failed"}}, aws)["published"] == 0
