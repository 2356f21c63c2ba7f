"""The local values of the definition's `${...}` placeholders (CDK fills the same names)."""

from __future__ import annotations

from pathlib import Path

from workflow.definition import placeholders as s
from workflow.local_runner.jobs import LOCAL_IMAGE_PREFIX
from workflow.local_runner.storage import LocalS3

LOCAL_ARTIFACT_BUCKET = "local-artifacts"
LOCAL_RAW_BUCKET = "local-raw"
LOCAL_CAPTURE_BUCKET = "local-capture"  # data capture and late labels (datacapture/, ground-truth/)


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
    for index in range(subnet_count):
        values[s.subnet_placeholder(index)] = f"subnet-local{index}"
    return values
