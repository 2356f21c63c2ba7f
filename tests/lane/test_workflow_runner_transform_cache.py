"""The local runner caches a Transform step with CacheConfig as it caches jobs.

The key is the step's arguments (execution ids symbolic), the serving code and the content of
every input object; the model is keyed by what it is (image, environment, model archive bytes),
not by the name CreateModel gives it for each execution.  So a re-run that registers the same
trained model again re-uses the scores, and a different model, input or argument scores again.
"""

from __future__ import annotations

import copy
import tarfile
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import SPEC, build_model_dir, expected, load_booster, make_records, to_csv

from pipeline_steps.serve.features import csv_columns
from workflow.local_runner.registry import LocalModelRegistry
from workflow.local_runner.runner import LocalPipelineRunner
from workflow.local_runner.storage import LocalS3
from workflow.local_runner.transform import run_create_model, transform_cache_key

ROLE = "arn:aws:iam::000000000000:role/r"
IMAGE = "000000000000.dkr.ecr.eu-west-1.amazonaws.com/serve:1"


def _definition() -> dict[str, Any]:
    """CreateModel from a registered package (a parameter), then a cached batch transform."""
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "ModelPackage", "Type": "String"},
            {"Name": "InputUri", "Type": "String", "DefaultValue": "s3://bucket/in/"},
        ],
        "Steps": [
            {
                "Name": "ServingModel",
                "Type": "Model",
                "Arguments": {
                    "PrimaryContainer": {"ModelPackageName": {"Get": "Parameters.ModelPackage"}},
                    "ExecutionRoleArn": ROLE,
                },
            },
            {
                "Name": "Score",
                "Type": "Transform",
                "Arguments": {
                    "ModelName": {"Get": "Steps.ServingModel.ModelName"},
                    "TransformInput": {
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3Uri": {"Get": "Parameters.InputUri"},
                            }
                        },
                        "ContentType": "text/csv",
                        "SplitType": "Line",
                    },
                    "TransformOutput": {
                        # one folder per execution, as the project's definition writes it
                        "S3OutputPath": {
                            "Std:Join": {
                                "On": "/",
                                "Values": ["s3://bucket/out", {"Get": "Execution.PipelineExecutionId"}],
                            }
                        },
                        "Accept": "text/csv",
                        "AssembleWith": "Line",
                    },
                    "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
                    "MaxConcurrentTransforms": 1,
                },
                "CacheConfig": {"Enabled": True, "ExpireAfter": "P30D"},
            },
        ],
    }


def _archive(model_dir: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return target


def _register(registry: LocalModelRegistry, archive: Path) -> str:
    request = {
        "ModelPackageGroupName": "g",
        "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bucket/m.tar.gz"}]},
    }
    return registry.register(request, model_archive=archive)["ModelPackageArn"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Any]:
    """One trained model; its archive, and the same model with one more tree (other bytes)."""
    base = tmp_path_factory.mktemp("transform-cache")
    model_dir = build_model_dir(base / "model")
    booster = load_booster(model_dir)
    archive = _archive(model_dir, base / "model.tar.gz")
    other_dir = base / "other"
    other_dir.mkdir()
    for path in model_dir.iterdir():
        (other_dir / path.name).write_bytes(path.read_bytes())
    other = booster[:10]  # the first 10 of its 20 trees: a different model on the same features
    other.save_model(str(other_dir / "xgboost-model.json"))
    return {"booster": booster, "archive": archive, "other_archive": _archive(other_dir, base / "o.tgz")}


def _scores(s3: LocalS3, uri: str) -> list[float]:
    return [float(line.split(",")[0]) for line in s3.path(f"{uri}/a.csv.out").read_text().splitlines()]


def test_a_rerun_with_the_same_model_and_input_is_served_from_the_cache(tmp_path, models):
    s3 = LocalS3(tmp_path)
    records = make_records(40, seed=41)
    source = s3.path("s3://bucket/in/a.csv")
    source.parent.mkdir(parents=True)
    source.write_bytes(to_csv(records, csv_columns(SPEC), header=False))
    runner = LocalPipelineRunner(_definition(), tmp_path, pipeline_name="p", echo=lambda line: None)
    v1 = _register(runner.registry, models["archive"])
    v2 = _register(runner.registry, models["archive"])  # the same trained model, registered again

    first = runner.run({"ModelPackage": v1})
    assert first.status == "Succeeded", first.failure and first.failure.message
    assert not first.steps["Score"].cached and first.steps["Score"].job_dir
    out = first.property("Steps.Score.TransformOutput.S3OutputPath")
    assert _scores(s3, out) == pytest.approx(expected(records, models["booster"]), abs=1e-6)
    assert first.steps["Score"].message == "40 rows scored from 1 object(s) in 1 request(s)"

    # Another version of the same model: a new name for the model, the same scores.
    again = runner.run({"ModelPackage": v2})
    assert again.status == "Succeeded" and again.steps["Score"].cached
    assert again.steps["Score"].job_dir is None  # no job ran, no server started
    assert again.property("Steps.Score.TransformOutput.S3OutputPath") == out  # the first run's output
    assert again.steps["Score"].message == first.steps["Score"].message

    # Without the cache (a runner with use_cache=False) the job runs whatever the cache holds.
    # (What else makes it score again, a model, input or argument that differs: the test below.)
    fresh = LocalPipelineRunner(
        _definition(), tmp_path, pipeline_name="p", echo=lambda line: None, use_cache=False
    )
    assert not fresh.run({"ModelPackage": v1}).steps["Score"].cached


def test_the_key_follows_the_model_content_the_input_content_and_the_arguments(tmp_path, models):
    """What changes the key (each would score differently) and what does not (names)."""
    s3 = LocalS3(tmp_path)
    source = s3.path("s3://bucket/in/a.csv")
    source.parent.mkdir(parents=True)
    source.write_text("1,2\n")
    registry = LocalModelRegistry(tmp_path / "registry")
    created: dict[str, dict[str, Any]] = {}
    for name, archive in (("m1", "archive"), ("m2", "archive"), ("m3", "other_archive")):
        arn = _register(registry, models[archive])
        run_create_model(
            "ServingModel", {"PrimaryContainer": {"ModelPackageName": arn}}, created, name, registry
        )
    args = _definition()["Steps"][1]["Arguments"]
    args = {**args, "TransformInput": copy.deepcopy(args["TransformInput"])}
    args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] = "s3://bucket/in/"

    def key(model: str = "m1", **changes: Any) -> str:
        changed = {**args, **changes}
        return transform_cache_key(changed, changed, created[model], s3)

    base = key()
    assert key("m2") == base  # same image, environment and archive bytes: the same model
    assert key("m3") != base  # other model bytes
    assert key(MaxConcurrentTransforms=2) != base
    with_env = copy.deepcopy(created["m1"])
    with_env["Container"]["Environment"] = {"SERVE_MAX_PAYLOAD_MB": "6"}
    assert transform_cache_key(args, args, with_env, s3) != base
    other_image = copy.deepcopy(created["m1"])
    other_image["Container"]["Image"] = IMAGE.replace(":1", ":2")
    assert transform_cache_key(args, args, other_image, s3) != base
    source.write_text("1,3\n")  # the input's content
    assert key() != base
