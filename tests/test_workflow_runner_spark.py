"""The local runner and a Spark step: what it runs for `smspark-submit --py-files DIR APP ARGS`.

The Spark run itself is in test_steps_preprocess_spark.py (one SparkSession for the session);
here only what the runner prepares, without starting Spark.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from workflow.definition import placeholders as names
from workflow.local_runner.jobs import SPARK_CODE_MODULE, Host, StepFailed, spark_application, step_module
from workflow.local_runner.local_values import LOCAL_ASSET_BUCKET, local_values
from workflow.local_runner.storage import LocalS3

ROOT = Path(__file__).resolve().parents[1]


def _request(entrypoint: list[str]) -> dict:
    return {"AppSpecification": {"ImageUri": "aws-spark-image", "ContainerEntrypoint": entrypoint}}


def test_a_spark_job_is_its_application_with_the_code_folder():
    entry = ["smspark-submit", "--py-files", "/opt/ml/processing/input/spark-code", "/opt/ml/x/app.py"]
    assert spark_application(_request(entry)) == ("/opt/ml/processing/input/spark-code", "/opt/ml/x/app.py")
    assert step_module("Processing", _request(entry)) == SPARK_CODE_MODULE
    assert spark_application(_request(["python", "-m", "pipeline_steps.preprocess"])) is None
    with pytest.raises(StepFailed, match="only --py-files"):
        spark_application(_request(["smspark-submit", "--jars", "/j", "/opt/ml/x/app.py"]))


def test_option_tokens_with_container_paths_are_rewritten(tmp_path):
    host = Host("algo-1", tmp_path)
    assert host.rewrite("--entities=/opt/ml/processing/input/entities") == (
        f"--entities={tmp_path}/processing/input/entities"
    )
    assert host.rewrite("--staging=hdfs:///preprocess-staging") == "--staging=hdfs:///preprocess-staging"
    assert host.rewrite("/opt/ml/processing/output") == f"{tmp_path}/processing/output"


def test_local_values_upload_the_application_and_the_code_bundle(tmp_path):
    s3 = LocalS3(tmp_path)
    values = local_values(s3, ROOT / "workflow" / "specs" / "merchant_credit.yaml")
    assert values[names.SPARK_CODE_BUCKET] == LOCAL_ASSET_BUCKET
    entry = s3.path(f"s3://{LOCAL_ASSET_BUCKET}/{values[names.SPARK_ENTRY_FILE]}")
    code = s3.path(f"s3://{LOCAL_ASSET_BUCKET}/{values[names.SPARK_CODE_FILE]}")
    assert entry.read_bytes() == (ROOT / "pipeline_steps/preprocess_spark/spark_main.py").read_bytes()
    listed = set(zipfile.ZipFile(code).namelist())
    assert "pipeline_steps/preprocess_spark/spark_engine.py" in listed
    assert "pipeline_steps/common/feature_spec.py" in listed
    assert "sqlglot/__init__.py" in listed and not any("__pycache__" in n for n in listed)
    # Named by content, like CDK's asset keys: the same code, the same key (and step cache).
    assert local_values(s3, ROOT / "workflow" / "specs" / "merchant_credit.yaml") == values
