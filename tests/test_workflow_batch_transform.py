"""Batch transform: the Transform step in the definition, and the local runner's transform job
through the real server (split, batch strategy, payload limit, assemble), as SageMaker runs it."""

from __future__ import annotations

import io
import json
import tarfile

import pandas as pd
import pytest
from serve_helpers import SPEC, build_model_dir, expected, load_booster, make_records, to_csv

from pipeline_steps.serve import payload
from pipeline_steps.serve.features import FeatureEncoder, csv_columns
from workflow.definition.request_check import check_request
from workflow.local_runner import transform
from workflow.local_runner.jobs import StepFailed
from workflow.local_runner.registry import LocalModelRegistry
from workflow.local_runner.storage import LocalS3
from workflow.local_runner.transform import _assemble, _batches, run_create_model, run_transform

MB = 1024 * 1024


def test_definition_has_the_transform_steps():
    from workflow.definition.cached import definition_text
    from workflow.definition.environment import settings_for_environment

    definition = json.loads(definition_text(SPEC, settings_for_environment("dev")))
    steps = {s["Name"]: s for s in definition["Steps"]}
    model, transform = steps["ServingModel"], steps["ScoreTestSplit"]
    assert model["Type"] == "Model" and transform["Type"] == "Transform"
    container = model["Arguments"]["PrimaryContainer"]
    assert container["ModelPackageName"] == {"Get": "Steps.RegisterModel.ModelPackageArn"}
    assert model["Arguments"]["EnableNetworkIsolation"] is True
    args = transform["Arguments"]
    assert args["ModelName"] == {"Get": "Steps.ServingModel.ModelName"}
    assert args["TransformInput"]["SplitType"] == "None"
    assert args["TransformInput"]["ContentType"] == "application/x-parquet"
    assert args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"
    }
    assert (
        args["TransformOutput"]["AssembleWith"] == "Line" and args["TransformOutput"]["Accept"] == "text/csv"
    )
    assert args["BatchStrategy"] == "MultiRecord" and args["MaxPayloadInMB"] == 100
    assert container["Environment"]["SERVE_MAX_PAYLOAD_MB"] == "100"


def test_batches_follow_sagemakers_split_and_strategy():
    body = b"".join(f"{i},x\n".encode() for i in range(10))
    multi = _batches(body, "Line", "MultiRecord", 12, "k", "S")
    assert [first for first, _ in multi] == [0, 3, 6, 9]  # as many 4-byte lines as fit in 12 bytes
    assert b"".join(p for _, p in multi) == body
    single = _batches(body, "Line", "SingleRecord", 1 * MB, "k", "S")
    assert len(single) == 10 and single[3] == (3, b"3,x\n")
    assert _batches(body, "None", "MultiRecord", 1 * MB, "k", "S") == [(0, body)]
    with pytest.raises(StepFailed, match="exceed MaxPayloadInMB"):
        _batches(body, "None", "MultiRecord", 5, "k", "S")
    with pytest.raises(StepFailed, match="RecordIO"):
        _batches(body, "RecordIO", "MultiRecord", 5, "k", "S")
    assert _assemble([b"a\n", b"b"], "Line") == b"a\nb\n" and _assemble([b"a", b"b"], "None") == b"ab"


def test_parquet_split_file_is_scored_whole():
    records = make_records(30, seed=31)
    frame = pd.DataFrame.from_records(records)
    frame[SPEC.label] = 1  # the label is ignored, derived ratios are recomputed
    frame["request_to_revenue"] = 0.0
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    encoded = payload.decode(buffer.getvalue(), "application/x-parquet", FeatureEncoder(SPEC))
    assert encoded.matrix.shape == (30, len(SPEC.model_features))
    assert encoded.ids == [r[SPEC.entity_id] for r in records]
    frame["colour"] = "red"
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    with pytest.raises(payload.RequestError, match="colour"):
        payload.decode(buffer.getvalue(), "application/x-parquet", FeatureEncoder(SPEC))


def test_transform_job_through_the_server(tmp_path, monkeypatch):
    started: list[int] = []

    class Endpoint(transform.LocalEndpoint):
        def __init__(self, *args, workers: int = 2, **kwargs):
            started.append(workers)
            super().__init__(*args, workers=workers, **kwargs)

    monkeypatch.setattr(transform, "LocalEndpoint", Endpoint)
    model_dir = build_model_dir(tmp_path / "model")
    booster = load_booster(model_dir)
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in model_dir.iterdir():
            tar.add(path, arcname=path.name)
    registry = LocalModelRegistry(tmp_path / "registry")
    package = registry.register({"ModelPackageGroupName": "g"}, model_archive=archive)
    s3 = LocalS3(tmp_path)
    inputs = {"a.csv": make_records(10_000, seed=32), "sub/b.csv": make_records(50, seed=33)}
    for key, records in inputs.items():
        target = s3.path(f"s3://bucket/in/{key}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(to_csv(records, csv_columns(SPEC), header=False))
    assert s3.path("s3://bucket/in/a.csv").stat().st_size > 1 * MB  # two requests at 1 MB
    models: dict = {}
    create = {
        "ModelName": "m",
        "PrimaryContainer": {"ModelPackageName": package["ModelPackageArn"]},
        "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
    }
    check_request("Model", create)
    run_create_model("ServingModel", create, models, "m", registry)
    args = {
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": "s3://bucket/out", "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 1,
        "MaxConcurrentTransforms": 2,  # two requests in flight, to a server with two workers
    }
    check_request("Transform", args)
    # A file the model refuses fails the job (as on SageMaker), naming it and the server's
    # answer; the objects before it (sorted by key, as listed) are already scored.
    bad = s3.path("s3://bucket/in/z.csv")
    bad.write_text("x,y\n")
    with pytest.raises(StepFailed, match="z.csv: records from 0: the model answered 400"):
        run_transform("Score", args, tmp_path / "job", s3, models, "job-1")
    bad.unlink()
    for key, records in inputs.items():
        lines = s3.path(f"s3://bucket/out/{key}.out").read_text().splitlines()
        assert [float(line.split(",")[0]) for line in lines] == pytest.approx(
            expected(records, booster), abs=1e-6
        )
        assert {line.split(",")[2] for line in lines} == {"m"}  # the model version column
    assert started == [2]  # MaxConcurrentTransforms: a worker per request in flight
