"""The environment's model-build pipeline: one SageMaker pipeline definition, deployed by CDK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets

from config import REPO_ROOT, Environment, ProjectConfig
from constructs import Construct
from constructs.encrypted_log_group import EncryptedLogGroup
from constructs.feature_group import FeatureGroup
from constructs.model_package_group import ModelPackageGroup
from constructs.pipeline_execution_role import JOB_LOG_GROUPS, PipelineExecutionRole
from constructs.prefix_access import grant_read_object, grant_read_prefix, grant_read_write_prefix
from constructs.sagemaker_pipeline import SageMakerPipeline
from constructs.spark_code import SparkCode
from constructs.step_image import StepImage
from pipeline_steps.common.feature_spec import FeatureSpec
from stacks.removal import removal_policy
from workflow.definition import placeholders
from workflow.definition.cached import definition_text
from workflow.definition.environment import pipeline_settings


class ModelBuildStack(Stack):
    """Step images, the feature spec as an S3 asset, the model package group, the jobs' log
    groups, the execution role and the SageMaker pipeline built from
    `pipeline_settings(config, environment)` and the feature spec.

    The execution role is assembled from its owners' grants: the raw data prefix (read), the
    artifact bucket's pipeline prefix (read/write, no delete), the spec object, each image
    (pull) and the model package group (register; only as PendingManualApproval where approval
    is manual).  Buckets are taken by their deterministic names (as in FeatureStoreStack), so
    the role's policy names them as plain ARNs; the keys, VPC, subnets and security group are
    the data and network stacks' own.  Exposes `settings`, `images` by step, `feature_spec`,
    `model_package_group`, `job_log_groups`, `execution_role` and `pipeline`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ProjectConfig,
        environment: Environment,
        spec: FeatureSpec,
        raw_bucket_name: str,
        artifact_bucket_name: str,
        key: kms.IKey,
        logs_key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        feature_groups: Sequence[FeatureGroup],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.settings = settings = pipeline_settings(config, environment, spec.name)
        if len(subnets) != settings.subnet_count:
            raise ValueError(
                f"ModelBuildStack: environment {environment.name} has {len(subnets)} private subnets but the "
                f"pipeline settings expect {settings.subnet_count} (environments.{environment.name}.vpc)"
            )
        raw = s3.Bucket.from_bucket_name(self, "RawBucket", raw_bucket_name)
        artifacts = s3.Bucket.from_bucket_name(self, "ArtifactBucket", artifact_bucket_name)

        self.spark = settings.preprocess_engine == "spark"
        # On Spark, Preprocess runs on AWS's Spark image with the code from `spark_code`.
        self.images = {
            step: StepImage(self, f"{step.capitalize()}Image", step=step, repo_root=REPO_ROOT)
            for step in placeholders.IMAGE_PLACEHOLDERS
            if not (self.spark and step == "preprocess")
        }
        self.spark_code = SparkCode(self, "SparkCode", repo_root=REPO_ROOT) if self.spark else None
        self.feature_spec = s3_assets.Asset(
            self, "FeatureSpec", path=str(config.feature_spec_path), display_name="feature spec"
        )
        self.model_package_group = ModelPackageGroup(
            self,
            "ModelPackageGroup",
            name=settings.model_package_group,
            description=f"{spec.name}: models registered by {settings.pipeline_name}",
            removal_policy=removal_policy(environment),
            tags={"pipeline": settings.pipeline_name},
        )
        self.job_log_groups = self._job_log_groups(environment, logs_key)
        self._ingests = bool(feature_groups) and bool(spec.feature_groups)
        subnet_ids = [subnet.subnet_id for subnet in subnets]
        self.execution_role = self._execution_role(
            environment, key, vpc, subnet_ids, security_group.security_group_id
        )
        self._grant_role(environment, raw, artifacts, feature_groups)
        variables = {
            placeholders.EXECUTION_ROLE: self.execution_role.role.role_arn,
            placeholders.ARTIFACT_BUCKET: artifact_bucket_name,
            placeholders.RAW_BUCKET: raw_bucket_name,
            placeholders.KMS_KEY: key.key_arn,
            placeholders.FEATURE_SPEC_URI: self.feature_spec.s3_object_url,
            placeholders.SECURITY_GROUP: security_group.security_group_id,
            **{placeholders.subnet_placeholder(i): subnet_id for i, subnet_id in enumerate(subnet_ids)},
            **{
                name: self.images[step].image_uri
                for step, name in placeholders.IMAGE_PLACEHOLDERS.items()
                if step in self.images
            },
            **(self.spark_code.variables if self.spark_code else {}),
        }
        self.pipeline = SageMakerPipeline(
            self,
            "Pipeline",
            pipeline_name=settings.pipeline_name,
            definition=definition_text(spec, settings),
            role_arn=self.execution_role.role.role_arn,
            variables=variables,
            description=f"{spec.name}: preprocess, train, evaluate against the baseline, register if better",
        )
        # The role's policy exists before the pipeline can start a job, the group before a run
        # registers into it, and the log groups before a job writes (the role itself is
        # already referenced by the pipeline's RoleArn).
        self.pipeline.node.add_dependency(self.execution_role.policy)
        self.pipeline.node.add_dependency(self.model_package_group)
        for group in self.job_log_groups:
            self.pipeline.node.add_dependency(group)

    def _job_log_groups(self, environment: Environment, logs_key: kms.IKey) -> list[logs.ILogGroup]:
        """SageMaker writes job logs into these account-wide groups; declared so they have a
        retention and the logs key (see the README on accounts where they exist already)."""
        return [
            EncryptedLogGroup(
                self,
                f"{name.rsplit('/', 1)[-1]}Logs",
                log_group_name=name,
                key=logs_key,
                retention_days=environment.retention.log_days,
                removal_policy=removal_policy(environment),
            ).log_group
            for name in JOB_LOG_GROUPS
        ]

    def _grant_role(
        self,
        environment: Environment,
        raw: s3.IBucket,
        artifacts: s3.IBucket,
        feature_groups: Sequence[FeatureGroup],
    ) -> None:
        """The execution role from its owners' grants: the raw data prefix, the artifact
        prefix (no delete), the spec object, each image, the model package group (only as
        PendingManualApproval where a person approves), and the feature groups (the
        IngestFeatures step writes records and reads them back to skip unchanged ones)."""
        role, settings = self.execution_role.role, self.settings
        raw_objects = grant_read_prefix(role, raw, settings.data_prefix, "RawData")
        artifact_objects = grant_read_write_prefix(role, artifacts, settings.pipeline_name, "Artifacts")
        # Just the spec's own object (its key is the content hash), not the whole asset bucket.
        grant_read_object(role, self.feature_spec.bucket, self.feature_spec.s3_object_key, "FeatureSpec")
        for image in self.images.values():
            image.asset.repository.grant_pull(role)
        if self.spark_code:
            self.spark_code.grant_run(role, environment)
        for group in feature_groups:  # only what the IngestFeatures step calls
            group.grant(role, "sagemaker:BatchWriteRecord", "sagemaker:BatchGetRecord")
        self.model_package_group.grant_register(
            role, approval_status=environment.model_approval_status if environment.manual_approval else None
        )
        self.execution_role.acknowledge_resources(
            "Jobs read any object under the raw data prefix and write and read any object under "
            "<pipeline-name>/ in the artifact bucket; keys carry the execution id, known only at run time.",
            raw_objects,
            artifact_objects,
        )
        self.execution_role.acknowledge_resources(
            "Model package versions of the one model package group; SageMaker numbers each new version.",
            self.model_package_group.packages_arn,
        )

    def _execution_role(
        self,
        environment: Environment,
        key: kms.IKey,
        vpc: ec2.IVpc,
        subnet_ids: list[str],
        security_group_id: str,
    ) -> PipelineExecutionRole:
        settings, instances = self.settings, environment.instances
        return PipelineExecutionRole(
            self,
            "ExecutionRole",
            pipeline_name=settings.pipeline_name,
            key=key,
            log_group_arns=[
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=f"{name}:log-stream:*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
                for name in JOB_LOG_GROUPS
            ],
            vpc=vpc,
            subnet_ids=subnet_ids,
            security_group_id=security_group_id,
            instance_types=[instances.processing, instances.training, instances.evaluation],
            max_runtime_seconds=settings.max_runtime_seconds,
            tuning=settings.tuning_max_jobs > 0,
            ingest=self._ingests,
        )
