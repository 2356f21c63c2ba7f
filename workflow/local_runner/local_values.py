"""The local values of the definition's `${...}` placeholders (CDK fills the same names)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from config import REPO_ROOT
from workflow.definition import placeholders as s
from workflow.local_runner.jobs import LOCAL_IMAGE_PREFIX
from workflow.local_runner.storage import LocalS3

LOCAL_ARTIFACT_BUCKET = "local-artifacts"
LOCAL_RAW_BUCKET = "local-raw"
LOCAL_CAPTURE_BUCKET = "local-capture"  # data capture and late labels (datacapture/, ground-truth/)
LOCAL_ASSET_BUCKET = "local-assets"  # stands in for the CDK asset bucket (the Spark code)


def local_values(s3: LocalS3, feature_spec: Path, *, subnet_count: int = 16) -> dict[str, str]:
    """Placeholder -> local value; the feature spec is placed in the local artifact bucket."""
    spec_uri = f"s3://{LOCAL_ARTIFACT_BUCKET}/feature-spec/{feature_spec.name}"
    s3.put_file(feature_spec, spec_uri)
    values = {
        s.EXECUTION_ROLE: "arn:aws:iam::000000000000:role/local-execution",
        s.ARTIFACT_BUCKET: LOCAL_ARTIFACT_BUCKET,
        s.RAW_BUCKET: LOCAL_RAW_BUCKET,
        s.KMS_KEY: "local-kms-key",
        s.FEATURE_SPEC_URI: spec_uri,
        s.SECURITY_GROUP: "sg-local",
    }
    for step, name in s.IMAGE_PLACEHOLDERS.items():
        values[name] = f"{LOCAL_IMAGE_PREFIX}pipeline_steps.{step}"
    values.update(spark_code_values(s3))
    for index in range(subnet_count):
        values[s.subnet_placeholder(index)] = f"subnet-local{index}"
    return values


def spark_code_values(s3: LocalS3) -> dict[str, str]:
    """The Spark application file and the zip of the step code, as CDK uploads them
    (constructs/spark_code.py): objects named by their content hash in the asset bucket."""
    from workflow.definition.spark_step import ENTRY_MODULE_FILE, code_zip

    entry = REPO_ROOT / ENTRY_MODULE_FILE
    code = code_zip(REPO_ROOT)
    entry_key = f"{hashlib.sha256(entry.read_bytes()).hexdigest()}.py"
    code_key = f"{hashlib.sha256(code).hexdigest()}.zip"
    s3.put_file(entry, f"s3://{LOCAL_ASSET_BUCKET}/{entry_key}")
    s3.put_bytes(code, f"s3://{LOCAL_ASSET_BUCKET}/{code_key}")
    return {
        s.SPARK_CODE_BUCKET: LOCAL_ASSET_BUCKET,
        s.SPARK_ENTRY_FILE: entry_key,
        s.SPARK_CODE_FILE: code_key,
    }
