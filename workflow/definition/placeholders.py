"""`${Name}` placeholders: the values an environment only knows at deploy time.

The definition holds a placeholder wherever such a value goes (role, buckets, key, images,
subnets); CDK fills them with `Fn::Sub`, the local runner with local values.  The names and
the syntax are declared here, once, for the builder, the CDK construct and the runner.
"""

from __future__ import annotations

import re

EXECUTION_ROLE = "ExecutionRoleArn"
ARTIFACT_BUCKET = "ArtifactBucket"
RAW_BUCKET = "RawBucket"
KMS_KEY = "KmsKeyArn"
FEATURE_SPEC_URI = "FeatureSpecUri"
SECURITY_GROUP = "SecurityGroupId"
IMAGE_PLACEHOLDERS = {
    "preprocess": "PreprocessImageUri",
    "train": "TrainImageUri",
    "evaluate": "EvaluateImageUri",
    "serve": "ServeImageUri",
    "ingest": "IngestImageUri",
}
# The Spark engine's code on AWS's Spark processing image (workflow/definition/spark_step.py):
# the bucket of the two objects, the application file's key (also its file name in the
# container) and the key of the zip of the step code it imports (`--py-files`).
SPARK_CODE_BUCKET = "SparkCodeBucket"
SPARK_ENTRY_FILE = "SparkEntryFile"
SPARK_CODE_FILE = "SparkCodeFile"

# `${Name}`; `${!Literal}` is Fn::Sub's escape for a literal `${`, not a placeholder.
PLACEHOLDER = re.compile(r"\$\{(?!!)([^}]*)\}")
# What a placeholder's name may be (Fn::Sub takes more; the project's names are plain).
NAME = re.compile(r"^[A-Za-z0-9]+$")


def placeholder(name: str) -> str:
    return "${" + name + "}"


def subnet_placeholder(index: int) -> str:
    return f"Subnet{index}"
