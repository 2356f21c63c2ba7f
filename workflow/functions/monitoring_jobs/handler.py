"""Starts the monitor over the last window of captured traffic, and publishes its metrics.

`launch` (EventBridge Scheduler, input `{"scheduled_time": "<aws.scheduler.scheduled-time>"}`):
1. the window is the WINDOW_HOURS whole hours before the scheduled time;
2. the serving model version: MODEL_PACKAGE_VERSION if set, else the group's latest Approved
   package; its model, data baseline (statistics.json, constraints.json) and evaluation.json
   come from its ModelDataUrl and ModelMetrics;
3. the window's capture objects (one S3 listing per hour prefix `<capture prefix>/yyyy/mm/dd/hh/`)
   and the labels that arrived since the window began go into two manifest files, so the job
   downloads exactly those objects;
4. CreateProcessingJob with the monitor image, in the VPC with network isolation, KMS on the
   volume and the output, named `<endpoint>-mon-<yyyymmddhh>`: a retried invocation finds the
   job already there and does not start a second one.
An empty window starts no job; it is published as Records = 0 (the report's empty window).
With MODEL_MONITOR_BASELINE set, the baseline files are also copied to that S3 prefix, which
the optional Model Monitor schedules read: both monitors use the same baseline.

`publish` (EventBridge: the job Completed): reads the job's `metrics.emf.jsonl` and puts the
metrics with PutMetricData (the same names, dimensions and units as the EMF file).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

MAX_JOB_NAME = 63


def window(scheduled: datetime, hours: int) -> tuple[datetime, datetime]:
    end = scheduled.astimezone(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return end - timedelta(hours=hours), end


def hour_prefixes(prefix: str, start: datetime, end: datetime) -> list[str]:
    out, t = [], start
    while t < end:
        out.append(f"{prefix.rstrip('/')}/{t:%Y/%m/%d/%H}/")
        t += timedelta(hours=1)
    return out


def job_name(endpoint: str, end: datetime) -> str:
    suffix = f"-mon-{end:%Y%m%d%H}"
    return endpoint[: MAX_JOB_NAME - len(suffix)].rstrip("-") + suffix


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def serving_package(sagemaker: Any, group: str, version: str | None) -> dict[str, Any]:
    if version:
        arn_prefix = sagemaker.describe_model_package_group(ModelPackageGroupName=group)[
            "ModelPackageGroupArn"
        ]
        arn = arn_prefix.replace(":model-package-group/", ":model-package/") + f"/{version}"
        return sagemaker.describe_model_package(ModelPackageName=arn)
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not listed:
        raise LookupError(f"model package group {group} has no Approved version: nothing is served")
    return sagemaker.describe_model_package(ModelPackageName=listed[0]["ModelPackageArn"])


def list_keys(s3: Any, bucket: str, prefixes: list[str]) -> list[str]:
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
    return keys


def manifest(bucket: str, keys: list[str]) -> str:
    """A SageMaker S3 manifest: a common prefix, then keys relative to it."""
    return json.dumps([{"prefix": f"s3://{bucket}/"}, *keys])


def processing_request(
    env: dict[str, str],
    *,
    name: str,
    end: datetime,
    package: dict[str, Any],
    capture_manifest: str,
    labels_manifest: str | None,
    output_uri: str,
) -> dict[str, Any]:
    metrics = package.get("ModelMetrics", {})
    statistics = metrics["ModelDataQuality"]["Statistics"]["S3Uri"]
    constraints = metrics["ModelDataQuality"]["Constraints"]["S3Uri"]
    evaluation = metrics["ModelQuality"]["Statistics"]["S3Uri"]
    model = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    base = "/opt/ml/processing/input"

    def s3_input(input_name: str, uri: str, local: str, kind: str = "S3Prefix") -> dict[str, Any]:
        return {
            "InputName": input_name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": f"{base}/{local}",
                "S3DataType": kind,
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            },
        }

    baseline = statistics.rsplit("/", 1)[0] + "/"
    if constraints.rsplit("/", 1)[0] + "/" != baseline:
        raise ValueError(f"baseline files in two places: {statistics} and {constraints}; expected one folder")
    inputs = [
        s3_input("capture", capture_manifest, "capture", "ManifestFile"),
        s3_input("baseline", baseline, "baseline"),
        s3_input("evaluation", evaluation, "evaluation"),
        s3_input("model", model, "model"),
    ]
    if labels_manifest:
        inputs.append(s3_input("ground_truth", labels_manifest, "ground_truth", "ManifestFile"))
    arguments = [
        "--endpoint", env["ENDPOINT_NAME"],
        "--window-end", end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--window-hours", env["WINDOW_HOURS"],
        *json.loads(env.get("MONITOR_ARGUMENTS", "[]")),
    ]  # fmt: skip
    return {
        "ProcessingJobName": name,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "monitoring",
                    "S3Output": {
                        "S3Uri": output_uri,
                        "LocalPath": "/opt/ml/processing/output/monitoring",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
            "KmsKeyId": env["KMS_KEY_ARN"],
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": env["INSTANCE_TYPE"],
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": env["KMS_KEY_ARN"],
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": int(env.get("MAX_RUNTIME_SECONDS", "3600"))},
        "AppSpecification": {"ImageUri": env["IMAGE_URI"], "ContainerArguments": arguments},
        "NetworkConfig": {
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            "VpcConfig": {
                "SecurityGroupIds": [env["SECURITY_GROUP_ID"]],
                "Subnets": env["SUBNET_IDS"].split(","),
            },
        },
        "RoleArn": env["MONITOR_ROLE_ARN"],
        "Tags": [
            {"Key": "endpoint", "Value": env["ENDPOINT_NAME"]},
            {"Key": "model-package", "Value": package["ModelPackageArn"]},
        ],
    }


def launch(
    event: dict[str, Any], env: dict[str, str], clients: dict[str, Any], now: datetime
) -> dict[str, Any]:
    s3, sagemaker = clients["s3"], clients["sagemaker"]
    scheduled = event.get("scheduled_time")
    when = datetime.fromisoformat(scheduled.replace("Z", "+00:00")) if scheduled else now
    start, end = window(when, int(env["WINDOW_HOURS"]))
    endpoint = env["ENDPOINT_NAME"]
    capture_bucket = env["CAPTURE_BUCKET"]
    capture = list_keys(s3, capture_bucket, hour_prefixes(env["CAPTURE_PREFIX"], start, end))
    package = serving_package(sagemaker, env["MODEL_PACKAGE_GROUP"], env.get("MODEL_PACKAGE_VERSION") or None)
    if env.get("MODEL_MONITOR_BASELINE"):
        bucket, prefix = split_uri(env["MODEL_MONITOR_BASELINE"])
        for kind in ("Statistics", "Constraints"):
            source_bucket, source_key = split_uri(package["ModelMetrics"]["ModelDataQuality"][kind]["S3Uri"])
            s3.copy_object(
                Bucket=bucket,
                Key=f"{prefix.rstrip('/')}/{kind.lower()}.json",
                CopySource={"Bucket": source_bucket, "Key": source_key},
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=env["KMS_KEY_ARN"],
            )
    if not capture:
        metrics = clients["cloudwatch"]
        metrics.put_metric_data(
            Namespace=env["METRIC_NAMESPACE"],
            MetricData=[
                {
                    "MetricName": "Records",
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                    "Timestamp": end,
                    "Value": 0.0,
                    "Unit": "Count",
                }
            ],
        )
        return {"started": False, "reason": f"empty window {start.isoformat()}..{end.isoformat()}"}
    labels_start = start - timedelta(hours=int(env.get("LABEL_LOOKBACK_HOURS", "0")))
    labels = list_keys(
        s3,
        capture_bucket,
        hour_prefixes(env["GROUND_TRUTH_PREFIX"], labels_start, max(end, now.replace(tzinfo=None))),
    )
    name = job_name(endpoint, end)
    monitoring_bucket = env["MONITORING_BUCKET"]
    folder = f"monitoring/{endpoint}/{end:%Y/%m/%d/%H}"

    def put_manifest(kind: str, keys: list[str]) -> str:
        key = f"{folder}/manifests/{kind}.manifest"
        s3.put_object(
            Bucket=monitoring_bucket,
            Key=key,
            Body=manifest(capture_bucket, keys).encode(),
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=env["KMS_KEY_ARN"],
        )
        return f"s3://{monitoring_bucket}/{key}"

    request = processing_request(
        env,
        name=name,
        end=end,
        package=package,
        capture_manifest=put_manifest("capture", capture),
        labels_manifest=put_manifest("ground-truth", labels) if labels else None,
        output_uri=f"s3://{monitoring_bucket}/{folder}/report",
    )
    if _job_exists(sagemaker, name):
        return {"started": False, "reason": f"{name} already exists (a retried invocation)", "job": name}
    try:
        sagemaker.create_processing_job(**request)
    except sagemaker.exceptions.ResourceInUse:  # a concurrent invocation won the race
        return {"started": False, "reason": f"{name} already exists (a retried invocation)", "job": name}
    return {"started": True, "job": name, "capture_objects": len(capture), "label_objects": len(labels)}


def _job_exists(sagemaker: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        sagemaker.describe_processing_job(ProcessingJobName=name)
        return True
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return False
        raise


def emf_to_metric_data(document: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    directive = document["_aws"]["CloudWatchMetrics"][0]
    dimensions = [{"Name": d, "Value": str(document[d])} for d in directive["Dimensions"][0]]
    timestamp = datetime.fromtimestamp(document["_aws"]["Timestamp"] / 1000, tz=UTC)
    data = [
        {
            "MetricName": m["Name"],
            "Dimensions": dimensions,
            "Timestamp": timestamp,
            "Value": float(document[m["Name"]]),
            "Unit": m.get("Unit", "None"),
        }
        for m in directive["Metrics"]
    ]
    return directive["Namespace"], data


def publish(event: dict[str, Any], clients: dict[str, Any]) -> dict[str, Any]:
    detail = event["detail"]
    if detail.get("ProcessingJobStatus") != "Completed":
        return {"published": 0, "reason": f"job status {detail.get('ProcessingJobStatus')}"}
    output = detail["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, prefix = split_uri(output)
    body = (
        clients["s3"].get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/metrics.emf.jsonl")["Body"].read()
    )
    published = 0
    for line in body.decode().splitlines():
        if not line.strip():
            continue
        namespace, data = emf_to_metric_data(json.loads(line))
        for first in range(0, len(data), 20):  # stay well inside PutMetricData's batch limit
            clients["cloudwatch"].put_metric_data(Namespace=namespace, MetricData=data[first : first + 20])
        published += len(data)
    return {"published": published}


def _clients() -> dict[str, Any]:
    import boto3

    return {name: boto3.client(name) for name in ("s3", "sagemaker", "cloudwatch")}


def launch_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    result = launch(event, dict(os.environ), _clients(), datetime.now(UTC))
    print(json.dumps(result, default=str))
    return result


def publish_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    result = publish(event, _clients())
    print(json.dumps(result))
    return result
