"""The IAM role the monitor's SageMaker Processing jobs run as."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

import constructs.acknowledge as nag
from constructs import Construct
from constructs.pipeline_execution_role import ENI_ACTIONS, VPC_DESCRIBE_ACTIONS
from constructs.prefix_access import grant_read_prefix, grant_read_write_prefix
from constructs.service_trust import restrict_to_source

PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


class MonitorJobRole(Construct):
    """Reads the endpoint's capture and ground-truth prefixes, the job's manifests and the
    serving model's artifacts (model, baseline, evaluation) under the model-build pipeline's
    prefix; writes only the endpoint's monitoring prefix; uses the data key, pulls the monitor
    image, writes the processing job log group and places its network interfaces in the VPC.

    Exposes `role`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        capture_bucket: s3.IBucket,
        capture_prefix: str,
        ground_truth_prefix: str,
        monitoring_bucket: s3.IBucket,
        monitoring_prefix: str,
        artifact_bucket: s3.IBucket,
        artifact_prefix: str,
        key: kms.IKey,
        image: ecr_assets.DockerImageAsset,
        vpc: ec2.IVpc,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Monitoring jobs of endpoint {endpoint_name}",
        )
        role = self.role
        # Monitoring jobs only: the launcher's and Model Monitor's processing jobs (names chosen
        # at run time) in this account.
        restrict_to_source(
            role,
            source_arn=f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:processing-job/*",
        )
        grant_read_prefix(role, capture_bucket, capture_prefix, "ReadCapture")
        grant_read_prefix(role, capture_bucket, ground_truth_prefix, "ReadGroundTruth")
        grant_read_write_prefix(role, monitoring_bucket, monitoring_prefix, "WriteMonitoring")
        grant_read_prefix(role, artifact_bucket, artifact_prefix, "ReadArtifacts")
        key.grant_encrypt_decrypt(role)
        image.repository.grant_pull(role)
        log_group = (
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{PROCESSING_LOG_GROUP}:*"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[log_group],
            )
        )
        vpc_arn = f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:vpc/{vpc.vpc_id}"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobNetworkInterfacesInTheVpcOnly",
                actions=ENI_ACTIONS,
                resources=["*"],
                conditions={"ArnEqualsIfExists": {"ec2:Vpc": vpc_arn}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="DescribeTheVpc", actions=VPC_DESCRIBE_ACTIONS, resources=["*"])
        )
        policy = role.node.find_child("DefaultPolicy")
        iam5 = "AwsSolutions-IAM5"
        nag.acknowledge(
            policy,
            "Prefix-scoped grants (constructs/prefix_access.py) on named prefixes (the endpoint's capture "
            "and ground-truth prefixes, its monitoring prefix, the pipeline's artifact prefix): the "
            "objects under each prefix, whose keys carry hours and execution ids known only at run time.",
            f"{iam5}[Resource::{capture_bucket.arn_for_objects(f'{capture_prefix}/*')}]",
            f"{iam5}[Resource::{capture_bucket.arn_for_objects(f'{ground_truth_prefix}/*')}]",
            f"{iam5}[Resource::{monitoring_bucket.arn_for_objects(f'{monitoring_prefix}/*')}]",
            f"{iam5}[Resource::{artifact_bucket.arn_for_objects(f'{artifact_prefix}/*')}]",
        )
        nag.acknowledge(
            policy,
            "grant_encrypt_decrypt on the environment's one data key (named in Resource): the job reads "
            "and writes KMS-encrypted objects and its volume.",
            f"{iam5}[Action::kms:ReEncrypt*]",
            f"{iam5}[Action::kms:GenerateDataKey*]",
        )
        nag.acknowledge(
            policy,
            "Actions without a resource ARN: ecr:GetAuthorizationToken (grant_pull), EC2 Describe* of the "
            "VPC, and the ENI actions SageMaker needs for VPC jobs (condition: ec2:Vpc is this VPC).",
            f"{iam5}[Resource::*]",
        )
        nag.acknowledge(
            policy,
            "SageMaker's processing job log group; stream names are per job, chosen at run time.",
            f"{iam5}[Resource::{log_group}]",
        )
        nag.acknowledge(
            policy,
            "The role's own policy, generated by grant_* and kept with the one role it belongs to.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )
