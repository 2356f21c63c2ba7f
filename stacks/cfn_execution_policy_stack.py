"""The least-privilege policy CloudFormation deploys the project's stacks with, in place of the
CDK bootstrap's default AdministratorAccess (`cdk bootstrap --cloudformation-execution-policies`).

One managed policy per account: the environment policy lets CloudFormation create, change and
delete exactly the kinds of resources the environment's stacks declare, named with the
environment's prefix where the service lets a name be chosen or CloudFormation generates it
from the stack name; the tooling policy does the same for the delivery stack.  IAM is limited
to the prefix's roles and policies, a role may only be given the prefix's own policies (never
AdministratorAccess), and roles are passed only to the services that use them.

Deployed before bootstrap, with the caller's own credentials (CliCredentialsStackSynthesizer):
`cdk deploy -c target=bootstrap <stack>`; the README gives the commands.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CliCredentialsStackSynthesizer, Stack
from aws_cdk import aws_iam as iam

import constructs.acknowledge as nag
from config import Environment, ProjectConfig
from config.schema import CDK_QUALIFIER, partition_of
from constructs import Construct

# The IAM service principals project roles are passed to (pipeline and jobs, Feature Store,
# flow logs, replication, CDK's custom-resource Lambda, CodePipeline and CodeBuild).
PASSED_TO = {
    "environment": [
        "sagemaker.amazonaws.com",
        "vpc-flow-logs.amazonaws.com",
        "s3.amazonaws.com",
        "lambda.amazonaws.com",
    ],
    "tooling": ["codepipeline.amazonaws.com", "codebuild.amazonaws.com"],
}
IAM_ROLE_ACTIONS = [
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
]
IAM_POLICY_ACTIONS = [
    "iam:CreatePolicy",
    "iam:DeletePolicy",
    "iam:GetPolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:GetPolicyVersion",
    "iam:ListPolicyVersions",
    "iam:ListEntitiesForPolicy",
    "iam:TagPolicy",
    "iam:UntagPolicy",
]
KMS_KEY_ACTIONS = [
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:UpdateAlias",
    "kms:DescribeKey",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:PutKeyPolicy",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:ScheduleKeyDeletion",
    "kms:EnableKey",
    "kms:DisableKey",
]
LOG_GROUP_ACTIONS = [
    "logs:CreateLogGroup",
    "logs:DeleteLogGroup",
    "logs:PutRetentionPolicy",
    "logs:DeleteRetentionPolicy",
    "logs:AssociateKmsKey",
    "logs:DisassociateKmsKey",
    "logs:TagResource",
    "logs:UntagResource",
    "logs:TagLogGroup",
    "logs:ListTagsForResource",
]
BUCKET_ACTIONS = [
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:ListBucket",
    "s3:GetBucket*",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutBucketLogging",
    "s3:PutBucketTagging",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
    "s3:PutEncryptionConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:GetReplicationConfiguration",
]


class CfnExecutionPolicyStack(Stack):
    """`<prefix>-cfn-execution` in one account: `kind` "environment" (an environment's stacks)
    or "tooling" (the delivery stack).  Exposes `policy` and `policy_name`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ProjectConfig,
        kind: str,
        account: str,
        region: str,
        prefix: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, synthesizer=CliCredentialsStackSynthesizer(), **kwargs)
        self.policy_name = f"{prefix}-cfn-execution"
        arns = _Arns(partition_of(region), account, region)
        statements = (
            environment_statements(arns, prefix, config.project)
            if kind == "environment"
            else tooling_statements(arns, prefix)
        )
        statements += iam_statements(arns, prefix, PASSED_TO[kind])
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=self.policy_name,
            description=f"CloudFormation execution policy for the {prefix} stacks (cdk bootstrap)",
            statements=statements,
        )
        _acknowledge_patterns(self.policy, statements)


class _Arns:
    """ARNs as plain strings (not Stack.format_arn tokens): the same strings name the policy's
    cdk-nag findings, and the policy is read by people before they bootstrap."""

    def __init__(self, partition: str, account: str, region: str) -> None:
        self.partition, self.account, self.region = partition, account, region

    def __call__(self, service: str, resource: str) -> str:
        """`arn:<partition>:<service>:<region>:<account>:<resource>`; S3 ARNs have neither."""
        if service == "s3":
            return f"arn:{self.partition}:s3:::{resource}"
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def _statement(sid: str, actions: list[str], resources: list[str], **conditions: Any) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions or None)


def environment_statements(arn: _Arns, prefix: str, project: str) -> list[iam.PolicyStatement]:
    glue_prefix = prefix.replace("-", "_")
    in_region = {"StringEquals": {"aws:RequestedRegion": arn.region}}
    log_groups = [
        f"/{project}/{prefix.removeprefix(project + '-')}/*",
        f"/aws/lambda/{prefix}-*",
        "/aws/sagemaker/ProcessingJobs",
        "/aws/sagemaker/TrainingJobs",
        f"/aws/sagemaker/Endpoints/{prefix}-*",
    ]
    return [
        _statement(
            "Network",
            [
                "ec2:Describe*",
                "ec2:CreateVpc",
                "ec2:DeleteVpc",
                "ec2:ModifyVpcAttribute",
                "ec2:CreateSubnet",
                "ec2:DeleteSubnet",
                "ec2:ModifySubnetAttribute",
                "ec2:CreateRouteTable",
                "ec2:DeleteRouteTable",
                "ec2:AssociateRouteTable",
                "ec2:DisassociateRouteTable",
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
                "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
                "ec2:CreateVpcEndpoint",
                "ec2:ModifyVpcEndpoint",
                "ec2:DeleteVpcEndpoints",
                "ec2:CreateFlowLogs",
                "ec2:DeleteFlowLogs",
                "ec2:CreateTags",
                "ec2:DeleteTags",
            ],
            ["*"],
            **in_region,
        ),
        _statement("CreateKeys", ["kms:CreateKey"], ["*"], **in_region),
        _statement("ManageKeys", KMS_KEY_ACTIONS, [arn("kms", "key/*"), arn("kms", f"alias/{prefix}-*")]),
        # CreateFeatureGroup with a KMS online store, and a DynamoDB table or SQS queue encrypted with
        # the project key, check the caller may use the key through that service.
        _statement(
            "FeatureStoreKeyUse",
            [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:GenerateDataKey",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:CreateGrant",
                "kms:RetireGrant",
                "kms:RevokeGrant",
                "kms:ListGrants",
            ],
            [arn("kms", "key/*")],
            StringEquals={
                "kms:ViaService": [
                    f"{service}.{arn.region}.amazonaws.com" for service in ("sagemaker", "dynamodb", "sqs")
                ]
            },
        ),
        _statement("ListKeyAliases", ["kms:ListAliases"], ["*"]),
        _statement("Buckets", BUCKET_ACTIONS, [arn("s3", f"{prefix}-*")]),
        _statement(
            "CdkAssets",
            ["s3:GetObject"],
            [arn("s3", f"cdk-{CDK_QUALIFIER}-assets-{arn.account}-{arn.region}/*")],
        ),
        _statement("LogGroups", LOG_GROUP_ACTIONS, [arn("logs", f"log-group:{name}") for name in log_groups]),
        _statement("DescribeLogGroups", ["logs:DescribeLogGroups"], [arn("logs", "log-group:*")]),
        _statement(
            "CustomResourceFunctions",
            [
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:InvokeFunction",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:ListTags",
            ],
            [arn("lambda", f"function:{prefix}-*")],
        ),
        # The project's functions run with reserved concurrency.
        _statement(
            "FunctionConcurrency",
            ["lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency"],
            [arn("lambda", f"function:{prefix}-*")],
        ),
        # The functions' dead-letter queues (CloudFormation names them after their stack).
        _statement(
            "DeadLetterQueues",
            [
                "sqs:CreateQueue",
                "sqs:DeleteQueue",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:TagQueue",
                "sqs:UntagQueue",
                "sqs:ListQueueTags",
            ],
            [arn("sqs", f"{prefix}-*")],
        ),
        # The retraining trigger's cooldown table (a TableV2: a global table of one region).
        _statement(
            "CooldownTable",
            [
                "dynamodb:CreateTable",
                "dynamodb:DeleteTable",
                "dynamodb:DescribeTable",
                "dynamodb:UpdateTable",
                "dynamodb:TagResource",
                "dynamodb:UntagResource",
                "dynamodb:ListTagsOfResource",
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:UpdateContinuousBackups",
                "dynamodb:DescribeTimeToLive",
                "dynamodb:UpdateTimeToLive",
                "dynamodb:DescribeContributorInsights",
                "dynamodb:DescribeKinesisStreamingDestination",
            ],
            [arn("dynamodb", f"table/{prefix}-*")],
        ),
        _statement(
            "SageMaker",
            [
                "sagemaker:CreatePipeline",
                "sagemaker:UpdatePipeline",
                "sagemaker:DeletePipeline",
                "sagemaker:DescribePipeline",
                "sagemaker:CreateModelPackageGroup",
                "sagemaker:DeleteModelPackageGroup",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:CreateFeatureGroup",
                "sagemaker:UpdateFeatureGroup",
                "sagemaker:DeleteFeatureGroup",
                "sagemaker:DescribeFeatureGroup",
                "sagemaker:AddTags",
                "sagemaker:DeleteTags",
                "sagemaker:ListTags",
            ],
            [
                arn("sagemaker", f"pipeline/{prefix}-*"),
                arn("sagemaker", f"model-package-group/{prefix}-*"),
                arn("sagemaker", f"feature-group/{prefix}-*"),
            ],
        ),
        _statement(
            "Serving",
            [
                "sagemaker:CreateModel",
                "sagemaker:DeleteModel",
                "sagemaker:DescribeModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:AddTags",
                "sagemaker:DeleteTags",
                "sagemaker:ListTags",
            ],
            [
                arn("sagemaker", f"model/{prefix}-*"),
                arn("sagemaker", f"endpoint-config/{prefix}-*"),
                arn("sagemaker", f"endpoint/{prefix}-*"),
            ],
        ),
        # The endpoint's model comes from a registered model package of the environment's group.
        _statement(
            "ServedModelPackages",
            ["sagemaker:DescribeModelPackage"],
            [arn("sagemaker", f"model-package/{prefix}-*")],
        ),
        _statement(
            "EndpointScaling",
            [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:PutScheduledAction",
                "application-autoscaling:DeleteScheduledAction",
                "application-autoscaling:DescribeScheduledActions",
                "application-autoscaling:TagResource",
            ],
            ["*"],
            **in_region,
        ),
        _statement(
            "ScalingServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [
                f"arn:{arn.partition}:iam::{arn.account}:role/aws-service-role/"
                "sagemaker.application-autoscaling.amazonaws.com/*"
            ],
            StringEquals={"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"},
        ),
        _statement(
            "AlarmsAndDashboards",
            [
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
                "cloudwatch:PutDashboard",
                "cloudwatch:DeleteDashboards",
                "cloudwatch:GetDashboard",
            ],
            [
                arn("cloudwatch", f"alarm:{prefix}-*"),
                f"arn:{arn.partition}:cloudwatch::{arn.account}:dashboard/{prefix}-*",
            ],
        ),
        _statement(
            "AlarmTopics",
            [
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:TagResource",
                "sns:UntagResource",
                "sns:ListTagsForResource",
            ],
            [arn("sns", f"{prefix}-*")],
        ),
        _statement(
            "Rules",
            [
                "events:PutRule",
                "events:DeleteRule",
                "events:DescribeRule",
                "events:PutTargets",
                "events:RemoveTargets",
                "events:TagResource",
                "events:UntagResource",
            ],
            [arn("events", f"rule/{prefix}-*")],
        ),
        _statement(
            "Schedules",
            [
                "scheduler:CreateSchedule",
                "scheduler:UpdateSchedule",
                "scheduler:DeleteSchedule",
                "scheduler:GetSchedule",
            ],
            [arn("scheduler", "schedule/default/" + f"{prefix}-*")],
        ),
        _statement(
            "GlueDatabase",
            ["glue:CreateDatabase", "glue:DeleteDatabase", "glue:GetDatabase", "glue:UpdateDatabase"],
            [
                arn("glue", "catalog"),
                arn("glue", f"database/{glue_prefix}_*"),
                arn("glue", f"table/{glue_prefix}_*/*"),
            ],
        ),
        _statement(
            "BootstrapVersion",
            ["ssm:GetParameters"],
            [arn("ssm", f"parameter/cdk-bootstrap/{CDK_QUALIFIER}/version")],
        ),
    ]


def tooling_statements(arn: _Arns, prefix: str) -> list[iam.PolicyStatement]:
    in_region = {"StringEquals": {"aws:RequestedRegion": arn.region}}
    return [
        _statement(
            "Pipeline",
            [
                "codepipeline:CreatePipeline",
                "codepipeline:UpdatePipeline",
                "codepipeline:DeletePipeline",
                "codepipeline:GetPipeline",
                "codepipeline:GetPipelineState",
                "codepipeline:TagResource",
                "codepipeline:UntagResource",
                "codepipeline:ListTagsForResource",
            ],
            [arn("codepipeline", f"{prefix}*")],
        ),
        _statement(
            "BuildProjects",
            [
                "codebuild:CreateProject",
                "codebuild:UpdateProject",
                "codebuild:DeleteProject",
                "codebuild:BatchGetProjects",
            ],
            [arn("codebuild", "project/*")],
            **in_region,
        ),
        _statement(
            "UseTheSourceConnection",
            ["codeconnections:PassConnection", "codestar-connections:PassConnection"],
            [arn("codeconnections", "connection/*"), arn("codestar-connections", "connection/*")],
        ),
        _statement("CreateKeys", ["kms:CreateKey"], ["*"], **in_region),
        _statement("ManageKeys", KMS_KEY_ACTIONS, [arn("kms", "key/*"), arn("kms", "alias/*")]),
        _statement("ListKeyAliases", ["kms:ListAliases"], ["*"]),
        _statement("Buckets", BUCKET_ACTIONS, [arn("s3", f"{prefix}-*")]),
        _statement(
            "LogGroups", LOG_GROUP_ACTIONS, [arn("logs", f"log-group:/{prefix.split('-')[0]}/delivery/*")]
        ),
        _statement("DescribeLogGroups", ["logs:DescribeLogGroups"], [arn("logs", "log-group:*")]),
        _statement(
            "BootstrapVersion",
            ["ssm:GetParameters"],
            [arn("ssm", f"parameter/cdk-bootstrap/{CDK_QUALIFIER}/version")],
        ),
    ]


def iam_statements(arn: _Arns, prefix: str, passed_to: list[str]) -> list[iam.PolicyStatement]:
    """Roles and policies named with the prefix only (CloudFormation names them after the
    stack); attach only the prefix's own managed policies; pass roles only to `passed_to`."""
    roles = f"arn:{arn.partition}:iam::{arn.account}:role/{prefix}-*"
    policies = f"arn:{arn.partition}:iam::{arn.account}:policy/{prefix}-*"
    return [
        _statement("ProjectRoles", IAM_ROLE_ACTIONS, [roles]),
        _statement(
            "AttachOnlyProjectPolicies",
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [roles],
            ArnLike={"iam:PolicyARN": policies},
        ),
        _statement("ProjectManagedPolicies", IAM_POLICY_ACTIONS, [policies]),
        _statement(
            "PassProjectRoles", ["iam:PassRole"], [roles], StringEquals={"iam:PassedToService": passed_to}
        ),
    ]


def _acknowledge_patterns(policy: iam.ManagedPolicy, statements: list[iam.PolicyStatement]) -> None:
    """One reason for the patterns: CloudFormation generates most names from the stack name at
    create time, so the policy names the prefix rather than each resource."""
    findings = set()
    for statement in statements:
        findings |= {f"Action::{a}" for a in statement.actions if "*" in a}
        findings |= {f"Resource::{r}" for r in statement.resources if "*" in r}
    nag.acknowledge(
        policy,
        "CloudFormation creates these resources and generates most of their names from the stack "
        "name at create time; the policy names the project prefix, the services and actions the "
        "stacks declare, and resource-less actions (Create*, Describe*) limited to the region.",
        *(f"AwsSolutions-IAM5[{finding}]" for finding in sorted(findings)),
    )


def bootstrap_stacks(scope: Construct, config: ProjectConfig) -> list[CfnExecutionPolicyStack]:
    """One policy stack per environment account and one for the tooling account."""
    stacks = []
    for env in config.environments:
        stacks.append(_environment_stack(scope, config, env))
    tooling = config.tooling
    stacks.append(
        CfnExecutionPolicyStack(
            scope,
            "DeliveryCfnExecutionPolicy",
            stack_name=f"{config.project}-delivery-cfn-execution-policy",
            config=config,
            kind="tooling",
            account=tooling.account,
            region=tooling.region,
            prefix=f"{config.project}-delivery",
            env={"account": tooling.account, "region": tooling.region},
        )
    )
    return stacks


def _environment_stack(scope: Construct, config: ProjectConfig, env: Environment) -> CfnExecutionPolicyStack:
    prefix = config.prefix(env)
    return CfnExecutionPolicyStack(
        scope,
        f"{env.name.capitalize()}CfnExecutionPolicy",
        stack_name=f"{prefix}-cfn-execution-policy",
        config=config,
        kind="environment",
        account=env.account,
        region=env.region,
        prefix=prefix,
        env={"account": env.account, "region": env.region},
    )
