"""The Spark engine's code for the Preprocess step on AWS's Spark processing image."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets

from config import Environment
from constructs import Construct
from constructs.network import ECR_PULL_ACTIONS
from constructs.prefix_access import grant_read_object
from workflow.definition import placeholders
from workflow.definition.spark_step import ENTRY_MODULE_FILE, spark_repository_arn, stage_code


class SparkCode(Construct):
    """Two S3 assets in the CDK asset bucket: the Spark application file and a zip of the code it
    imports (`pipeline_steps/` with `common/`, `preprocess/` and `preprocess_spark/`, and sqlglot: see
    `spark_step.code_files`).  Their hashed keys
    change with the code, so a code change is a new definition (and a cache miss).

    Exposes `entry`, `code` (the assets) and `variables` (the definition's Spark
    placeholders -> bucket and keys); `grant_run(role, environment)` lets the job role read the
    two objects and pull AWS's Spark image.
    """

    def __init__(self, scope: Construct, id: str, *, repo_root: Path) -> None:
        super().__init__(scope, id)
        self.entry = s3_assets.Asset(
            self, "Entry", path=str(repo_root / ENTRY_MODULE_FILE), display_name="Spark application"
        )
        # The bundle staged once per content under .cache/ (CDK zips and uploads it).
        bundle = stage_code(repo_root, repo_root / ".cache" / "spark-code")
        self.code = s3_assets.Asset(self, "Code", path=str(bundle), display_name="Spark step code")
        self.variables = {
            placeholders.SPARK_CODE_BUCKET: self.entry.s3_bucket_name,
            placeholders.SPARK_ENTRY_FILE: self.entry.s3_object_key,
            placeholders.SPARK_CODE_FILE: self.code.s3_object_key,
        }

    def grant_run(self, role: iam.IRole, environment: Environment) -> None:
        grant_read_object(role, self.entry.bucket, self.entry.s3_object_key, "SparkApplication")
        grant_read_object(role, self.code.bucket, self.code.s3_object_key, "SparkStepCode")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PullAwsSparkImage",
                actions=ECR_PULL_ACTIONS,
                resources=[spark_repository_arn(environment.region, environment.partition)],
            )
        )
