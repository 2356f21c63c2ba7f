"""What the delivery stack adds to the pipeline CDK Pipelines generates: versioning and access
logs on its artifact bucket, its artifact key retained, asset builds that may start only their
own CodeBuild projects, the connection permission in the connection's own service prefix, and
the cdk-nag acknowledgements of the policies CDK Pipelines writes for its roles, each on the
one policy that has the finding.

This walks CDK Pipelines' construct paths (`Pipeline/Source/...`, `Assets/FileRole`, ...);
each lookup fails the synth if CDK moves them, rather than skipping the hardening.
"""

from __future__ import annotations

import json
from typing import cast

from aws_cdk import CfnElement, RemovalPolicy, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

import constructs.acknowledge as nag
from config import ProjectConfig
from config.schema import cfn_execution_role_arn
from constructs import IConstruct
from constructs.encryption_key import ADMIN_ACTIONS, USE_ACTIONS
from constructs.service_trust import restrict_to_source
from stacks.generated_policies import Statement, actions, rewrite_key_policy_statements, rewrite_statements

ASSET_ROLES = ("Assets/FileRole", "Assets/DockerRole")
BUILD_ROLES = ("Pipeline/Build/Synth/CdkBuildProject/Role", "UpdatePipeline/SelfMutation/Role", *ASSET_ROLES)
BUILD_ACTIONS = {"codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"}


def harden(
    stack: Stack,
    pipeline: pipelines.CodePipeline,
    access_logs: s3.IBucket,
    build_logs: logs.ILogGroup,
    config: ProjectConfig,
) -> None:
    harden_artifact_store(stack, pipeline, access_logs)
    scope_asset_builds(pipeline)
    write_only_the_build_log_group(pipeline, build_logs)
    use_the_connections_own_prefix(pipeline, config.tooling.connection_arn)
    restrict_service_roles_to_this_account(stack, pipeline)
    acknowledge_generated_policies(stack, pipeline)


def harden_artifact_store(stack: Stack, pipeline: pipelines.CodePipeline, access_logs: s3.IBucket) -> None:
    """CDK Pipelines creates the artifact bucket (KMS, TLS only, public access blocked) and its
    key; add versioning and server access logs, which it does not set, and retain the key as
    the bucket is retained (a deleted key would leave the bucket's objects unreadable)."""
    bucket = pipeline.pipeline.artifact_bucket
    cfn = bucket.node.default_child
    assert isinstance(cfn, s3.CfnBucket)
    cfn.versioning_configuration = s3.CfnBucket.VersioningConfigurationProperty(status="Enabled")
    cfn.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
        destination_bucket_name=access_logs.bucket_name, log_file_prefix="pipeline-artifacts/"
    )
    assert bucket.encryption_key is not None
    bucket.encryption_key.apply_removal_policy(RemovalPolicy.RETAIN)
    split_key_administration_from_use(stack, bucket.encryption_key)
    access_logs.add_to_resource_policy(
        iam.PolicyStatement(
            sid="S3ServerAccessLogsOfPipelineArtifacts",
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[access_logs.arn_for_objects("pipeline-artifacts/*")],
            conditions={
                "ArnLike": {"aws:SourceArn": bucket.bucket_arn},
                "StringEquals": {"aws:SourceAccount": stack.account},
            },
        )
    )
    nag.acknowledge(
        bucket,
        "Pipeline artifacts are rebuilt from the source repository on every run; a replica adds nothing.",
        "NIST.800.53.R5-S3BucketReplicationEnabled",
    )


def split_key_administration_from_use(stack: Stack, key: kms.IKey) -> None:
    """The artifact key's generated policy gives the account root `kms:*`; as for the project's
    own keys, the CloudFormation execution role administers it and the account's IAM policies
    may only use it (the deploy roles of the environments keep their own statements)."""
    tooling_cfn_role = cfn_execution_role_arn(stack.account, stack.region)

    def is_root_admin(statement: Statement) -> bool:
        return actions(statement) == ["kms:*"] and ":root" in json.dumps(statement.get("Principal"))

    def split(statement: Statement) -> list[Statement]:
        return [
            {
                "Sid": "KeyAdministrationNotUse",
                "Effect": "Allow",
                "Principal": {"AWS": tooling_cfn_role},
                "Action": list(ADMIN_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "UseThroughIamPolicies",
                "Effect": "Allow",
                "Principal": statement["Principal"],
                "Action": list(USE_ACTIONS),
                "Resource": "*",
            },
        ]

    rewrite_key_policy_statements(key, "artifact key root kms:*", is_root_admin, split)


def scope_asset_builds(pipeline: pipelines.CodePipeline) -> None:
    """CDK Pipelines' asset roles may start, watch and stop every CodeBuild project in the
    account (`Resource: *`), which would let them start another project, self-mutation
    included, with a buildspec override; limit them to the asset projects."""
    projects = sorted(
        {p.project_arn for p in _find(pipeline, "Assets").node.find_all() if isinstance(p, codebuild.Project)}
    )
    if not projects:
        raise ValueError("delivery pipeline: no asset CodeBuild projects found under Assets/")

    def is_build(statement: Statement) -> bool:
        return set(actions(statement)) == BUILD_ACTIONS and statement.get("Resource") == "*"

    for path in ASSET_ROLES:
        if _has(pipeline, path):
            rewrite_statements(
                _policy(pipeline, path), f"{path} StartBuild", is_build, lambda s: {**s, "Resource": projects}
            )


def write_only_the_build_log_group(pipeline: pipelines.CodePipeline, build_logs: logs.ILogGroup) -> None:
    """Every project writes its logs to `build_logs` (code_build_defaults); CDK still grants the
    roles CodeBuild's default `/aws/codebuild/...` groups (the asset roles: all of them).  Point
    those statements at the one declared group, without CreateLogGroup."""
    group_arns = [build_logs.log_group_arn]

    def is_default_logs(statement: Statement) -> bool:
        return "logs:CreateLogGroup" in actions(statement) and "/aws/codebuild/" in json.dumps(statement)

    for path in BUILD_ROLES:
        if _has(pipeline, path):
            rewrite_statements(
                _policy(pipeline, path),
                f"{path} logs",
                is_default_logs,
                lambda s: {
                    **s,
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": group_arns,
                },
            )


def use_the_connections_own_prefix(pipeline: pipelines.CodePipeline, connection_arn: str) -> None:
    """CDK grants `codestar-connections:UseConnection`; a connection ARN in the newer
    `codeconnections` service is used with the `codeconnections:` action of the same name."""
    service = connection_arn.split(":")[2]
    if service == "codestar-connections":
        return
    rewrite_statements(
        _policy(pipeline, f"Pipeline/Source/{_source_action(pipeline)}/CodePipelineActionRole"),
        "UseConnection",
        lambda s: actions(s) == ["codestar-connections:UseConnection"],
        lambda s: {**s, "Action": f"{service}:UseConnection"},
    )


def restrict_service_roles_to_this_account(stack: Stack, pipeline: pipelines.CodePipeline) -> None:
    """CodePipeline and CodeBuild may assume the roles CDK Pipelines creates for them only for
    this account's pipeline and projects (confused-deputy conditions)."""
    sources = {
        "codepipeline.amazonaws.com": stack.format_arn(
            service="codepipeline", resource="*", region=stack.region
        ),
        "codebuild.amazonaws.com": stack.format_arn(
            service="codebuild", resource="project", resource_name="*"
        ),
    }
    for role in pipeline.node.find_all():
        if not isinstance(role, iam.Role):
            continue
        cfn = role.node.default_child
        assert isinstance(cfn, iam.CfnRole)
        services = {
            service
            for statement in stack.resolve(cfn.assume_role_policy_document)["Statement"]
            for service in _as_list(statement.get("Principal", {}).get("Service", []))
        }
        if len(services) == 1 and (service := services.pop()) in sources:
            restrict_to_source(role, source_arn=sources[service])


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def acknowledge_generated_policies(stack: Stack, pipeline: pipelines.CodePipeline) -> None:
    """CDK Pipelines writes its roles' policies itself (grant_* on its own artifact bucket and
    key, CodeBuild logs and reports, the CDK bootstrap roles).  Each finding is acknowledged on
    the one policy that has it, with the reason it is acceptable there."""
    lid = stack.get_logical_id
    bucket = pipeline.pipeline.artifact_bucket
    artifacts = f"<{lid(cast(CfnElement, bucket.node.default_child))}.Arn>/*"
    prefix = f"arn:{stack.resolve(stack.partition)}"
    region_account = f"{stack.region}:{stack.account}"

    def report_groups(project_path: str) -> list[str]:
        project = lid(cast(CfnElement, _find(pipeline, project_path).node.default_child))
        return [f"Resource::{prefix}:codebuild:{region_account}:report-group/<{project}>-*"]

    read = ["Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*", f"Resource::{artifacts}"]
    write = ["Action::s3:Abort*", "Action::s3:DeleteObject*"]
    key = ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"]
    findings = {
        "Pipeline/Role": read + write + key,
        f"Pipeline/Source/{_source_action(pipeline)}/CodePipelineActionRole": read + write + key,
        "Pipeline/Build/Synth/CdkBuildProject/Role": read
        + write
        + key
        + report_groups("Pipeline/Build/Synth/CdkBuildProject"),
        "CodeBuildActionRole": [],
    }
    if _has(pipeline, "UpdatePipeline/SelfMutation"):
        findings["UpdatePipeline/SelfMutation/Role"] = (
            read
            + key
            + report_groups("UpdatePipeline/SelfMutation")
            + [f"Resource::arn:*:iam::{stack.account}:role/*", "Resource::*"]
        )
    for path in ASSET_ROLES:
        if _has(pipeline, path):
            findings[path] = read + [f"Resource::{prefix}:codebuild:{region_account}:report-group/*"]
    reasons = {
        "Action::s3": "grant_read/grant_read_write on the pipeline's own artifact bucket "
        "(named in Resource).",
        f"Resource::{artifacts}": "Objects of the pipeline's own artifact bucket; CodePipeline "
        "generates the keys.",
        "Action::kms": "grant_encrypt_decrypt on the pipeline's own artifact key (named in Resource).",
        "Resource::arn:*:iam": "Self-mutation assumes only CDK bootstrap roles (condition on their "
        "aws-cdk:bootstrap-role tag).",
        "Resource::*": "Self-mutation's cloudformation:DescribeStacks and s3:ListBucket, which the CDK CLI "
        "calls to find the stacks and the asset bucket; read-only, no object access.",
        "Resource::": "CodeBuild report groups of this pipeline's projects; CodeBuild names each "
        "report at run time.",
    }
    for path, rules in findings.items():
        policy = _find(pipeline, f"{path}/DefaultPolicy")
        for finding in rules:
            reason = next(r for k, r in reasons.items() if finding.startswith(k) or finding == k)
            nag.acknowledge(policy, f"CDK Pipelines generated: {reason}", f"AwsSolutions-IAM5[{finding}]")
        nag.acknowledge(
            policy,
            "CDK Pipelines generates this policy for the one role it belongs to and keeps them in step.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )


def _source_action(pipeline: pipelines.CodePipeline) -> str:
    return next(iter(pipeline.pipeline.stages[0].actions)).action_properties.action_name


def _policy(pipeline: pipelines.CodePipeline, role_path: str) -> iam.Policy:
    policy = _find(pipeline, f"{role_path}/DefaultPolicy")
    assert isinstance(policy, iam.Policy)
    return policy


def _has(pipeline: pipelines.CodePipeline, path: str) -> bool:
    """Whether the pipeline has a construct at `path` (relative to the pipeline)."""
    node: IConstruct | None = pipeline
    for part in path.split("/"):
        node = node.node.try_find_child(part) if node is not None else None
    return node is not None


def _find(pipeline: pipelines.CodePipeline, path: str) -> IConstruct:
    """A construct under the pipeline by its path relative to the pipeline."""
    node: IConstruct = pipeline
    for part in path.split("/"):
        node = node.node.find_child(part)
    return node
