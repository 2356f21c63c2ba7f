"""The delivery pipeline (CDK Pipelines) in the tooling account."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, RemovalPolicy, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from config import REPO_ROOT, ProjectConfig
from constructs import Construct
from constructs.access_log_bucket import AccessLogBucket
from constructs.encrypted_log_group import EncryptedLogGroup
from constructs.encryption_key import EncryptionKey
from stacks import delivery_hardening
from stacks.environment_stage import EnvironmentStage

# The same commands the README gives; `make synth` writes cdk.out.
SYNTH_COMMANDS = ["make test", "make synth"]
PROMOTION_GATE = "prod"  # the environment deployed only after a manual approval
ACCESS_LOG_RETENTION_DAYS = 365
BUILD_LOG_RETENTION_DAYS = 365
# The CDK CLI the project pins (package.json) also runs self-mutation; cdk-assets is published
# separately: 4.7.3 was its current release when the CLI pin (2.1148.1) was made.
CDK_CLI_VERSION = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
CDK_ASSETS_VERSION = "4.7.3"


class DeliveryStack(Stack):
    """Source (CodeConnections) -> synth (test + synth) -> one stage per environment in config
    order, with a manual approval before prod.  Cross-account keys let each environment's
    account read the encrypted artifacts.  Without `tooling.self_mutation` (the default) the
    pipeline never rewrites itself, so no commit can remove the approval; with it, the CLI it
    installs is the pinned one.  CodeBuild logs go to one declared, encrypted log group.

    Exposes `pipeline`, `stages` by environment name, `access_logs` (server access logs of the
    artifact bucket), `logs_key` and `build_logs`.
    """

    def __init__(self, scope: Construct, id: str, *, config: ProjectConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        tooling = config.tooling
        self.logs_key, self.build_logs = self._build_logs(config)
        source = pipelines.CodePipelineSource.connection(
            tooling.repository, tooling.branch, connection_arn=tooling.connection_arn
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"{config.project}-delivery",
            cross_account_keys=True,
            enable_key_rotation=True,
            self_mutation=tooling.self_mutation,
            cli_version=CDK_CLI_VERSION,
            cdk_assets_cli_version=CDK_ASSETS_VERSION,
            code_build_defaults=pipelines.CodeBuildOptions(
                logging=codebuild.LoggingOptions(
                    cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.build_logs)
                )
            ),
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
            noncurrent_version_days=ACCESS_LOG_RETENTION_DAYS,
        ).bucket
        delivery_hardening.harden(self, self.pipeline, self.access_logs, self.build_logs, config)

    def _build_logs(self, config: ProjectConfig) -> tuple[kms.IKey, logs.ILogGroup]:
        name = f"/{config.project}/delivery/codebuild"
        key = EncryptionKey(
            self,
            "LogsKey",
            alias=f"{config.project}-delivery-logs",
            description=f"{config.project}: the delivery pipeline's build logs",
            admins=[config.tooling.cfn_execution_role_arn],
            log_group_arns=[
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        ).key
        group = EncryptedLogGroup(
            self,
            "BuildLogs",
            log_group_name=name,
            key=key,
            retention_days=BUILD_LOG_RETENTION_DAYS,
            removal_policy=RemovalPolicy.RETAIN,
        ).log_group
        return key, group
