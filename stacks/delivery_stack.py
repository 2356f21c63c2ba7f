"""The delivery pipeline (CDK Pipelines) in the tooling account."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, pipelines
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

import constructs.acknowledge as nag
from config import ProjectConfig
from constructs import Construct, IConstruct
from constructs.access_log_bucket import AccessLogBucket
from stacks.environment_stage import EnvironmentStage

# The same commands the README gives; `make synth` writes cdk.out.
SYNTH_COMMANDS = ["make test", "make synth"]
PROMOTION_GATE = "prod"  # the environment deployed only after a manual approval
ACCESS_LOG_RETENTION_DAYS = 365


class DeliveryStack(Stack):
    """Source (CodeConnections) -> synth (test + synth) -> one stage per environment in config
    order, with a manual approval before prod.  Cross-account keys let each environment's
    account read the encrypted artifacts.  Exposes `pipeline`, `stages` by environment name and
    `access_logs` (server access logs of the artifact bucket).
    """

    def __init__(self, scope: Construct, id: str, *, config: ProjectConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        tooling = config.tooling
        source = pipelines.CodePipelineSource.connection(
            tooling.repository, tooling.branch, connection_arn=tooling.connection_arn
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"{config.project}-delivery",
            cross_account_keys=True,
            enable_key_rotation=True,
            synth=pipelines.ShellStep(
                "Synth", input=source, commands=SYNTH_COMMANDS, primary_output_directory="cdk.out"
            ),
        )
        self.stages: dict[str, EnvironmentStage] = {}
        for env in config.environments:
            stage = EnvironmentStage(self, env.name.capitalize(), config=config, environment=env)
            pre = (
                [pipelines.ManualApprovalStep(f"Promote-to-{env.name}")] if env.name == PROMOTION_GATE else []
            )
            self.pipeline.add_stage(stage, pre=pre)
            self.stages[env.name] = stage

        # Build now so the generated artifact bucket and roles exist to harden and review.
        self.pipeline.build_pipeline()
        self.access_logs = AccessLogBucket(
            self,
            "AccessLogs",
            bucket_name=f"{config.project}-delivery-access-logs-{tooling.account}-{tooling.region}",
            retention_days=ACCESS_LOG_RETENTION_DAYS,
        ).bucket
        self._harden_artifact_bucket()
        self._acknowledge_generated_policies()

    def _harden_artifact_bucket(self) -> None:
        """CDK Pipelines creates the artifact bucket (KMS, TLS only, public access blocked);
        add versioning and server access logs, which it does not set."""
        bucket = self.pipeline.pipeline.artifact_bucket
        cfn = bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.versioning_configuration = s3.CfnBucket.VersioningConfigurationProperty(status="Enabled")
        cfn.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=self.access_logs.bucket_name, log_file_prefix="pipeline-artifacts/"
        )
        self.access_logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3ServerAccessLogsOfPipelineArtifacts",
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.access_logs.arn_for_objects("pipeline-artifacts/*")],
                conditions={
                    "ArnLike": {"aws:SourceArn": bucket.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
        nag.acknowledge(
            bucket,
            "Pipeline artifacts are rebuilt from the source repository on every run; a replica adds nothing.",
            "NIST.800.53.R5-S3BucketReplicationEnabled",
        )

    def _acknowledge_generated_policies(self) -> None:
        """CDK Pipelines writes its roles' policies itself (grant_* on its own artifact bucket and
        key, CodeBuild logs and reports, the CDK bootstrap roles).  Each finding is acknowledged
        on the one policy that has it, with the reason it is acceptable there."""

        lid = self.get_logical_id
        bucket = self.pipeline.pipeline.artifact_bucket
        artifacts = f"<{lid(bucket.node.default_child)}.Arn>/*"
        prefix = f"arn:{self.resolve(self.partition)}"
        region_account = f"{self.region}:{self.account}"

        def codebuild(project_path: str) -> list[str]:
            project = lid(self._find(project_path).node.default_child)
            return [
                f"Resource::{prefix}:logs:{region_account}:log-group:/aws/codebuild/<{project}>:*",
                f"Resource::{prefix}:codebuild:{region_account}:report-group/<{project}>-*",
            ]

        read = [
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            f"Resource::{artifacts}",
        ]
        write = ["Action::s3:Abort*", "Action::s3:DeleteObject*"]
        key = ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"]
        source = next(c for c in self.pipeline.pipeline.stages[0].actions).action_properties.action_name
        policies = {
            "Pipeline/Role": read + write + key,
            f"Pipeline/Source/{source}/CodePipelineActionRole": read + write + key,
            "Pipeline/Build/Synth/CdkBuildProject/Role": read
            + write
            + key
            + codebuild("Pipeline/Build/Synth/CdkBuildProject"),
            "UpdatePipeline/SelfMutation/Role": read
            + key
            + codebuild("UpdatePipeline/SelfMutation")
            + [f"Resource::arn:*:iam::{self.account}:role/*", "Resource::*"],
            "Assets/FileRole": read
            + [
                f"Resource::{prefix}:logs:{region_account}:log-group:/aws/codebuild/*",
                f"Resource::{prefix}:codebuild:{region_account}:report-group/*",
                "Resource::*",
            ],
            "CodeBuildActionRole": [],
        }
        if self._has("Assets/DockerRole"):  # the environments' step images (ModelBuildStack)
            policies["Assets/DockerRole"] = policies["Assets/FileRole"]
        reasons = {
            "Action::s3": "grant_read/grant_read_write on the pipeline's own artifact bucket "
            "(named in Resource).",
            f"Resource::{artifacts}": "Objects of the pipeline's own artifact bucket; "
            "CodePipeline generates the keys.",
            "Action::kms": "grant_encrypt_decrypt on the pipeline's own artifact key (named in Resource).",
            "Resource::arn:*:iam": "Self-mutation assumes only CDK bootstrap roles "
            "(condition on their aws-cdk:bootstrap-role tag).",
            "Resource::*": "CodeBuild BatchGetBuilds/StartBuild and CloudFormation DescribeStacks "
            "as the CDK CLI needs; no data access.",
            "Resource::": "CodeBuild log groups and report groups of this pipeline's projects; "
            "CodeBuild names streams per build.",
        }
        for path, findings in policies.items():
            policy = self._find(f"{path}/DefaultPolicy")
            for finding in findings:
                reason = next(r for k, r in reasons.items() if finding.startswith(k) or finding == k)
                nag.acknowledge(policy, f"CDK Pipelines generated: {reason}", f"AwsSolutions-IAM5[{finding}]")
            nag.acknowledge(
                policy,
                "CDK Pipelines generates this policy for the one role it belongs to and keeps them in step.",
                "NIST.800.53.R5-IAMNoInlinePolicy",
            )

    def _has(self, path: str) -> bool:
        """Whether the pipeline has a construct at `path` (relative to the pipeline)."""
        node: IConstruct | None = self.pipeline
        for part in path.split("/"):
            node = node.node.try_find_child(part) if node is not None else None
        return node is not None

    def _find(self, path: str) -> IConstruct:
        """A construct under the pipeline by its path relative to the pipeline."""
        node: IConstruct = self.pipeline
        for part in path.split("/"):
            node = node.node.find_child(part)
        return node
