"""The demo's serving part: the registered model as a local endpoint, called through boto3.

After registration: start the server with the new version (endpoint name = the model package
group, variant AllTraffic, data capture into the local capture bucket), send a few merchant
records (entity columns plus the history aggregates the online feature store would supply)
through `boto3.client("sagemaker-runtime", endpoint_url=...)`, print their scores and
decisions, print what the pipeline's batch transform scored, and stop the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline_steps.common.feature_spec import FeatureSpec
from workflow.definition.build import STEP_PREPROCESS
from workflow.definition.transform import STEP_TRANSFORM
from workflow.local_runner.endpoint import LocalEndpoint, capture_dir
from workflow.local_runner.runner import ExecutionResult
from workflow.local_runner.storage import LocalS3


def sample_records(
    result: ExecutionResult, s3: LocalS3, spec: FeatureSpec, n: int = 5
) -> list[dict[str, Any]]:
    import pandas as pd

    from pipeline_steps.serve.features import serving_columns

    test = s3.path(
        result.properties[f"Steps.{STEP_PREPROCESS}.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"]
    )
    frame = pd.read_parquet(sorted(test.rglob("*.parquet"))[0]).head(n)
    columns = [c for c in serving_columns(spec) if c in frame.columns]
    records = json.loads(frame[columns].to_json(orient="records", date_format="iso"))
    return [{k: v for k, v in r.items() if v is not None} for r in records]


def serve_and_score(result: ExecutionResult, s3: LocalS3, spec: FeatureSpec, log_file: Path) -> list[str]:
    import boto3

    package = result.registered or {}
    group, version = package["ModelPackageGroupName"], package["ModelPackageVersion"]
    lines = [f"  endpoint {group} (variant AllTraffic) serving version {version}:"]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as log:
        endpoint = LocalEndpoint(
            Path(package["LocalModelArchive"]),
            endpoint_name=group,
            model_version=f"{group}/{version}",
            capture_dir=capture_dir(s3),
            log=log,
        )
        try:
            endpoint.wait_ready()
            runtime = boto3.client(
                "sagemaker-runtime",
                endpoint_url=endpoint.url,
                region_name="eu-west-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
            records = sample_records(result, s3, spec)
            response = runtime.invoke_endpoint(
                EndpointName=group,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps({"instances": records}),
            )
            doc = json.loads(response["Body"].read())
            for p in doc["predictions"]:
                decision = "decline (default risk)" if p["label"] else "approve"
                lines.append(f"    {p.get('id', '?'):<14} probability {p['probability']:.4f} -> {decision}")
            lines.append(f"    inference id {doc['inference_id']}, model {doc['model_version']}")
        finally:
            code = endpoint.stop()
    lines.append(f"  endpoint stopped (exit {code}); capture: {capture_dir(s3) / group}; log: {log_file}")
    transform = result.steps.get(STEP_TRANSFORM)
    if transform is not None and transform.status == "Succeeded":
        out = result.properties.get(f"Steps.{STEP_TRANSFORM}.TransformOutput.S3OutputPath", "")
        lines.append(f"  batch transform of the test split: {transform.message}; output {s3.path(out)}")
    return lines
