"""The IAM role a SageMaker model-build pipeline and the jobs it starts run as."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets

import constructs.acknowledge as nag
from constructs import Construct

SAGEMAKER = "sagemaker.amazonaws.com"
# Where SageMaker writes processing and training job logs and metrics.
JOB_LOG_GROUPS = ("/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs")
JOB_METRIC_NAMESPACES = ("/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs")
# SageMaker Pipelines names the jobs it starts `pipelines-<execution id>-<step>-<random>`:
# chosen at run time, without the pipeline's name, so the prefix is the narrowest fixed part.
PIPELINE_JOB_NAME = "pipelines-*"
# The ENI actions SageMaker takes with the job's role to place a job in the VPC.
ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
]
VPC_DESCRIBE_ACTIONS = [
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
]


class PipelineExecutionRole(Construct):
    """Least-privilege role for one SageMaker pipeline: the pipeline runs as it and passes it
    to its processing and training jobs (trust: sagemaker.amazonaws.com).

    `grant_*` first: raw data under `data_prefix` (read), the artifact bucket under
    `<pipeline_name>/` (read/write), the feature spec object (read), the data key, every step
    image (pull).  Hand-written statements, each on named resources of this account and region:
    the jobs' log groups and metric namespaces, job create/describe/stop/tag on pipeline-started
    jobs (only in the given subnets and security group, with network isolation), the one model
    package group, PassRole of this role to SageMaker only, VPC network interfaces (only in
    `vpc`), and PutRecord on the given feature groups.  All in the role's one policy, whose
    every cdk-nag finding is acknowledged here with its reason.

    Exposes `role` and `policy` (the role's policy resource).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        raw_bucket: s3.IBucket,
        data_prefix: str,
        artifact_bucket: s3.IBucket,
        key: kms.IKey,
        feature_spec: s3_assets.Asset,
        images: Sequence[ecr_assets.DockerImageAsset],
        model_package_group_arn: str,
        model_packages_arn: str,
        feature_group_names: Sequence[str],
        vpc: ec2.IVpc,
        subnet_ids: Sequence[str],
        security_group_id: str,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        arn = f"arn:{stack.partition}"
        sagemaker_arn = f"{arn}:sagemaker:{stack.region}:{stack.account}"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(SAGEMAKER),
            description=f"SageMaker pipeline {pipeline_name} and its processing and training jobs",
        )
        role = self.role

        # ---- grant_* ---------------------------------------------------------------------
        data_prefix = data_prefix.strip("/")
        raw_bucket.grant_read(role, f"{data_prefix}/*")
        artifact_bucket.grant_read_write(role, f"{pipeline_name}/*")
        # Just the spec's own object (its key is the content hash), not the whole bootstrap
        # asset bucket that Asset.grant_read would open.
        feature_spec.bucket.grant_read(role, feature_spec.s3_object_key)
        key.grant_encrypt_decrypt(role)
        for image in images:
            image.repository.grant_pull(role)

        # ---- hand-written statements ------------------------------------------------------
        logs_arn = f"{arn}:logs:{stack.region}:{stack.account}"
        log_groups = [f"{logs_arn}:log-group:{group}:*" for group in JOB_LOG_GROUPS]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=log_groups,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": list(JOB_METRIC_NAMESPACES)}},
            )
        )
        jobs = [
            f"{sagemaker_arn}:processing-job/{PIPELINE_JOB_NAME}",
            f"{sagemaker_arn}:training-job/{PIPELINE_JOB_NAME}",
            # The Tune step (environments with tuning on); its training jobs carry its name.
            f"{sagemaker_arn}:hyper-parameter-tuning-job/{PIPELINE_JOB_NAME}",
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="CreateJobsInTheVpcOnly",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                ],
                resources=jobs,
                conditions={
                    "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
                    "ForAllValues:StringEquals": {
                        "sagemaker:VpcSubnets": list(subnet_ids),
                        "sagemaker:VpcSecurityGroupIds": [security_group_id],
                    },
                    "Bool": {"sagemaker:NetworkIsolation": "true"},
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ManageJobs",
                actions=[
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                ],
                resources=jobs,
            )
        )
        # The batch transform of the test split: a model from the registered package, one job.
        batch = [
            f"{sagemaker_arn}:model/{PIPELINE_JOB_NAME}",
            f"{sagemaker_arn}:transform-job/{PIPELINE_JOB_NAME}",
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="BatchTransform",
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:AddTags",
                ],
                resources=batch,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterModels",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:AddTags",
                ],
                resources=[model_package_group_arn, model_packages_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassThisRoleToSageMakerJobs",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
            )
        )
        vpc_arn = f"{arn}:ec2:{stack.region}:{stack.account}:vpc/{vpc.vpc_id}"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobNetworkInterfacesInTheVpcOnly",
                actions=ENI_ACTIONS,
                resources=["*"],
                # IfExists: of the resources one ENI call touches (interface, subnet, security
                # group), each that carries ec2:Vpc must be in this VPC.
                conditions={"ArnEqualsIfExists": {"ec2:Vpc": vpc_arn}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeTheVpc",
                actions=VPC_DESCRIBE_ACTIONS,
                resources=["*"],
            )
        )
        if feature_group_names:
            # The IngestFeatures step calls the Feature Store runtime, so it alone runs without
            # network isolation: still only in this VPC's subnets (no internet route).
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="CreateIngestJobsInTheVpcOnly",
                    actions=["sagemaker:CreateProcessingJob"],
                    resources=[f"{sagemaker_arn}:processing-job/{PIPELINE_JOB_NAME}"],
                    conditions={
                        "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
                        "ForAllValues:StringEquals": {
                            "sagemaker:VpcSubnets": list(subnet_ids),
                            "sagemaker:VpcSecurityGroupIds": [security_group_id],
                        },
                    },
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="IngestFeatures",
                    # Batched writes; reads back to skip unchanged records (idempotent re-runs).
                    actions=["sagemaker:PutRecord", "sagemaker:BatchWriteRecord", "sagemaker:BatchGetRecord"],
                    resources=[
                        f"{sagemaker_arn}:feature-group/{name.lower()}"
                        for name in sorted(feature_group_names)
                    ],
                )
            )

        policy = role.node.find_child("DefaultPolicy")
        self.policy = policy
        self._acknowledge(
            policy,
            raw_objects=raw_bucket.arn_for_objects(f"{data_prefix}/*"),
            artifact_objects=artifact_bucket.arn_for_objects(f"{pipeline_name}/*"),
            log_groups=log_groups,
            jobs=jobs + batch,
            model_packages_arn=model_packages_arn,
        )

    @staticmethod
    def _acknowledge(
        policy: Construct,
        *,
        raw_objects: str,
        artifact_objects: str,
        log_groups: list[str],
        jobs: list[str],
        model_packages_arn: str,
    ) -> None:
        iam5 = "AwsSolutions-IAM5"
        nag.acknowledge(
            policy,
            "grant_read/grant_read_write on the raw bucket's data prefix, the artifact bucket's pipeline "
            "prefix and the one feature spec object: the resources are named, the wildcard is CDK's "
            "read/write action set (object versions, bucket location, listing).",
            f"{iam5}[Action::s3:GetObject*]",
            f"{iam5}[Action::s3:GetBucket*]",
            f"{iam5}[Action::s3:List*]",
            f"{iam5}[Action::s3:DeleteObject*]",
            f"{iam5}[Action::s3:Abort*]",
        )
        nag.acknowledge(
            policy,
            "Jobs read any object under the raw data prefix and write and read any object under "
            "<pipeline-name>/ in the artifact bucket; keys carry the execution id, known only at run time.",
            f"{iam5}[Resource::{raw_objects}]",
            f"{iam5}[Resource::{artifact_objects}]",
        )
        nag.acknowledge(
            policy,
            "grant_encrypt_decrypt on the environment's one data key (named in Resource): jobs "
            "read and write KMS-encrypted data, volumes and model artifacts.",
            f"{iam5}[Action::kms:ReEncrypt*]",
            f"{iam5}[Action::kms:GenerateDataKey*]",
        )
        nag.acknowledge(
            policy,
            "Only actions that take no resource ARN: ecr:GetAuthorizationToken (from grant_pull), "
            "cloudwatch:PutMetricData (condition: SageMaker's job namespaces), EC2 Describe* of the "
            "VPC, and the ENI actions SageMaker needs for VPC jobs (condition: ec2:Vpc is this VPC).",
            f"{iam5}[Resource::*]",
        )
        nag.acknowledge(
            policy,
            "The two log groups SageMaker writes processing and training job logs to; stream names are "
            "per job, chosen by SageMaker at run time.",
            *(f"{iam5}[Resource::{group}]" for group in log_groups),
        )
        nag.acknowledge(
            policy,
            "Jobs and models that SageMaker Pipelines creates are named pipelines-<execution id>-<step>-"
            "<random>, chosen at run time; processing, training and tuning job creation is further limited "
            "to this VPC's subnets and security group with network isolation.",
            *(f"{iam5}[Resource::{job}]" for job in jobs),
        )
        nag.acknowledge(
            policy,
            "Model package versions of the one model package group; SageMaker numbers each new version.",
            f"{iam5}[Resource::{model_packages_arn}]",
        )
        nag.acknowledge(
            policy,
            "The role's own policy, generated by grant_* and kept with the one role it belongs to; "
            "it is created and deleted with that role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )
