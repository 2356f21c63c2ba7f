"""The environment's model-build pipeline: one SageMaker pipeline definition, deployed by CDK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets

from config import REPO_ROOT, Environment, ProjectConfig
from constructs import Construct
from constructs.model_package_group import ModelPackageGroup
from constructs.pipeline_execution_role import PipelineExecutionRole
from constructs.sagemaker_pipeline import SageMakerPipeline
from constructs.step_image import StepImage
from pipeline_steps.common.feature_spec import FeatureSpec
from workflow.definition import placeholders
from workflow.definition.cached import definition_text
from workflow.definition.environment import pipeline_settings


class ModelBuildStack(Stack):
    """Step images, the feature spec as an S3 asset, the model package group, the execution
    role and the SageMaker pipeline built from `pipeline_settings(config, environment)` and the
    feature spec.

    Buckets are taken by their deterministic names (as in FeatureStoreStack), so the role's
    policy names them as plain ARNs; the key, VPC, subnets and security group are the data and
    network stacks' own.  Exposes `settings`, `images` by step, `feature_spec`,
    `model_package_group`, `execution_role` and `pipeline`.
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
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        feature_group_names: Sequence[str],
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

        self.images = {
            step: StepImage(self, f"{step.capitalize()}Image", step=step, repo_root=REPO_ROOT)
            for step in placeholders.IMAGE_PLACEHOLDERS
        }
        self.feature_spec = s3_assets.Asset(
            self, "FeatureSpec", path=str(config.feature_spec_path), display_name="feature spec"
        )
        self.model_package_group = ModelPackageGroup(
            self,
            "ModelPackageGroup",
            name=settings.model_package_group,
            description=f"{spec.name}: models registered by {settings.pipeline_name}",
            tags={"pipeline": settings.pipeline_name},
        )
        subnet_ids = [subnet.subnet_id for subnet in subnets]
        self.execution_role = PipelineExecutionRole(
            self,
            "ExecutionRole",
            pipeline_name=settings.pipeline_name,
            raw_bucket=raw,
            data_prefix=settings.data_prefix,
            artifact_bucket=artifacts,
            key=key,
            feature_spec=self.feature_spec,
            images=[image.asset for image in self.images.values()],
            model_package_group_arn=self.model_package_group.arn,
            model_packages_arn=self.model_package_group.packages_arn,
            feature_group_names=feature_group_names,
            vpc=vpc,
            subnet_ids=subnet_ids,
            security_group_id=security_group.security_group_id,
        )
        variables = {
            placeholders.EXECUTION_ROLE: self.execution_role.role.role_arn,
            placeholders.ARTIFACT_BUCKET: artifact_bucket_name,
            placeholders.RAW_BUCKET: raw_bucket_name,
            placeholders.KMS_KEY: key.key_arn,
            placeholders.FEATURE_SPEC_URI: self.feature_spec.s3_object_url,
            placeholders.SECURITY_GROUP: security_group.security_group_id,
            **{placeholders.subnet_placeholder(i): subnet_id for i, subnet_id in enumerate(subnet_ids)},
            **{name: self.images[step].image_uri for step, name in placeholders.IMAGE_PLACEHOLDERS.items()},
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
        # The role's policy exists before the pipeline can start a job, and the group before
        # a run registers into it.
        self.pipeline.node.add_dependency(self.execution_role)
        self.pipeline.node.add_dependency(self.model_package_group)
