"""The IAM role a SageMaker model-build pipeline and the jobs it starts run as."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

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
KEY_USE_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]


class PipelineExecutionRole(Construct):
    """Least-privilege role for one SageMaker pipeline: the pipeline runs as it and passes it
    to its processing, training (and, with `tuning`, tuning) jobs.  Only SageMaker of this
    account may assume it.

    The role holds what the jobs themselves need: the data key (use, and grants for the
    encrypted volumes SageMaker attaches), the jobs' log streams and metrics, creating jobs only
    in `subnet_ids` and `security_group_id`, network-isolated, with inter-container encryption,
    the data key for volumes and outputs, `instance_types` only and at most
    `max_runtime_seconds`; describing, stopping and tagging pipeline-started jobs; passing this
    role to SageMaker only; VPC network interfaces only in `vpc`.  Data, registry and image
    access come from the owners' grants (`grant_*` on the model package group, the prefix
    grants in constructs/prefix_access.py, `grant_pull` on each image), given by the stack.

    Exposes `role` and `policy` (the role's policy resource); `acknowledge_resources`
    records the reason for wildcard resources of the grants the stack adds.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        key: kms.IKey,
        log_group_arns: Sequence[str],
        vpc: ec2.IVpc,
        subnet_ids: Sequence[str],
        security_group_id: str,
        instance_types: Sequence[str],
        max_runtime_seconds: int,
        tuning: bool,
        ingest: bool,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self._stack = stack
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                SAGEMAKER,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(service="sagemaker", resource="*")},
                },
            ),
            description=f"SageMaker pipeline {pipeline_name} and its processing and training jobs",
        )
        self._jobs = self._job_arns(tuning)
        self._use_key(key)
        self._write_job_logs(log_group_arns)
        self._put_job_metrics()
        self._create_jobs(key, subnet_ids, security_group_id, instance_types, max_runtime_seconds, ingest)
        self._manage_jobs()
        self._batch_transform()
        self._pass_itself_to_sagemaker()
        self._place_jobs_in(vpc)
        self.policy = self.role.node.find_child("DefaultPolicy")
        self._acknowledge(log_group_arns)

    def _job_arns(self, tuning: bool) -> list[str]:
        kinds = ["processing-job", "training-job"] + (["hyper-parameter-tuning-job"] if tuning else [])
        return [
            self._stack.format_arn(service="sagemaker", resource=kind, resource_name=PIPELINE_JOB_NAME)
            for kind in kinds
        ]

    def _use_key(self, key: kms.IKey) -> None:
        """Encrypt and decrypt data, models and volumes with the data key; let SageMaker (and only
        SageMaker, only for an AWS resource) create the grant that attaches an encrypted volume."""
        key.grant(self.role, *KEY_USE_ACTIONS)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="AttachEncryptedVolumes",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                    "StringEquals": {"kms:ViaService": f"sagemaker.{self._stack.region}.amazonaws.com"},
                },
            )
        )

    def _write_job_logs(self, log_group_arns: Sequence[str]) -> None:
        """Streams in the job log groups the stack declares (so no CreateLogGroup)."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=list(log_group_arns),
            )
        )

    def _put_job_metrics(self) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": list(JOB_METRIC_NAMESPACES)}},
            )
        )

    def _create_jobs(
        self,
        key: kms.IKey,
        subnet_ids: Sequence[str],
        security_group_id: str,
        instance_types: Sequence[str],
        max_runtime_seconds: int,
        ingest: bool,
    ) -> None:
        """Condition keys from the Service Authorization Reference (CreateProcessingJob,
        CreateTrainingJob, CreateHyperParameterTuningJob).  Instance types are run-time
        parameters of the pipeline: IAM bounds them to the environment's configured types.
        With `ingest` (the IngestFeatures step, which calls the Feature Store runtime) a
        processing job may also run without network isolation, under every other condition."""
        actions = ["sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"]
        if any(":hyper-parameter-tuning-job/" in job for job in self._jobs):
            actions.append("sagemaker:CreateHyperParameterTuningJob")
        conditions = {
            "Null": {
                "sagemaker:VpcSubnets": "false",
                "sagemaker:VpcSecurityGroupIds": "false",
                "sagemaker:InstanceTypes": "false",
            },
            "ForAllValues:StringEquals": {
                "sagemaker:VpcSubnets": list(subnet_ids),
                "sagemaker:VpcSecurityGroupIds": [security_group_id],
                "sagemaker:InstanceTypes": sorted(set(instance_types)),
            },
            "Bool": {
                "sagemaker:NetworkIsolation": "true",
                "sagemaker:InterContainerTrafficEncryption": "true",
            },
            "ArnEquals": {"sagemaker:VolumeKmsKey": key.key_arn, "sagemaker:OutputKmsKey": key.key_arn},
            "NumericLessThanEqualsIfExists": {"sagemaker:MaxRuntimeInSeconds": str(max_runtime_seconds)},
        }
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="CreateJobsInTheVpcOnly", actions=actions, resources=self._jobs, conditions=conditions
            )
        )
        if ingest:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="CreateIngestJobsInTheVpcOnly",
                    actions=["sagemaker:CreateProcessingJob"],
                    resources=[job for job in self._jobs if ":processing-job/" in job],
                    conditions={
                        **conditions,
                        "Bool": {"sagemaker:InterContainerTrafficEncryption": "true"},
                    },
                )
            )

    def _manage_jobs(self) -> None:
        actions = [
            "sagemaker:DescribeProcessingJob",
            "sagemaker:DescribeTrainingJob",
            "sagemaker:StopProcessingJob",
            "sagemaker:StopTrainingJob",
            "sagemaker:AddTags",
        ]
        if any(":hyper-parameter-tuning-job/" in job for job in self._jobs):
            actions += [
                "sagemaker:DescribeHyperParameterTuningJob",
                "sagemaker:StopHyperParameterTuningJob",
                "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
            ]
        self.role.add_to_policy(iam.PolicyStatement(sid="ManageJobs", actions=actions, resources=self._jobs))

    def _batch_transform(self) -> None:
        """The batch transform of the test split: a model from the registered package, one job."""
        self._batch = [
            self._stack.format_arn(service="sagemaker", resource=kind, resource_name=PIPELINE_JOB_NAME)
            for kind in ("model", "transform-job")
        ]
        self.role.add_to_policy(
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
                resources=self._batch,
            )
        )

    def _pass_itself_to_sagemaker(self) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PassThisRoleToSageMakerJobs",
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
            )
        )

    def _place_jobs_in(self, vpc: ec2.IVpc) -> None:
        vpc_arn = self._stack.format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobNetworkInterfacesInTheVpcOnly",
                actions=ENI_ACTIONS,
                resources=["*"],
                # IfExists: of the resources one ENI call touches (interface, subnet, security
                # group), each that carries ec2:Vpc must be in this VPC.
                conditions={"ArnEqualsIfExists": {"ec2:Vpc": vpc_arn}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="DescribeTheVpc", actions=VPC_DESCRIBE_ACTIONS, resources=["*"])
        )

    def acknowledge_resources(self, reason: str, *object_arns: str) -> None:
        """Wildcard resources of grants the stack adds to this role (prefixes, model versions)."""
        nag.acknowledge(self.policy, reason, *(f"AwsSolutions-IAM5[Resource::{arn}]" for arn in object_arns))

    def _acknowledge(self, log_group_arns: Sequence[str]) -> None:
        iam5 = "AwsSolutions-IAM5"
        nag.acknowledge(
            self.policy,
            "Only actions that take no resource ARN: ecr:GetAuthorizationToken (from grant_pull), "
            "cloudwatch:PutMetricData (condition: SageMaker's job namespaces), EC2 Describe* of the "
            "VPC, and the ENI actions SageMaker needs for VPC jobs (condition: ec2:Vpc is this VPC).",
            f"{iam5}[Resource::*]",
        )
        nag.acknowledge(
            self.policy,
            "Log streams of the two declared job log groups; SageMaker names a stream per job instance "
            "at run time.",
            *(f"{iam5}[Resource::{arn}]" for arn in log_group_arns if "*" in arn),
        )
        nag.acknowledge(
            self.policy,
            "Jobs and models that SageMaker Pipelines creates are named pipelines-<execution id>-<step>-"
            "<random>, chosen at run time; processing, training and tuning job creation is further "
            "limited to this VPC's subnets and security group, network isolation (except the ingest "
            "step), encrypted inter-container traffic, the data key and the configured instance types.",
            *(f"{iam5}[Resource::{job}]" for job in self._jobs + self._batch),
        )
        nag.acknowledge(
            self.policy,
            "The role's own policy, generated by grant_* and kept with the one role it belongs to; "
            "it is created and deleted with that role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )
