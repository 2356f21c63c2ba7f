"""The IAM role a SageMaker model (and so its endpoint or transform jobs) runs as."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

import constructs.acknowledge as nag
from constructs import Construct
from constructs.pipeline_execution_role import ENI_ACTIONS, SAGEMAKER, VPC_DESCRIBE_ACTIONS

# Where SageMaker writes endpoint container logs and transform job logs.
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints/{name}"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"


class EndpointExecutionRole(Construct):
    """Least-privilege role for one served model (trust: sagemaker.amazonaws.com).

    `grant_*` only on what the model needs: read its model artifacts (`reads`: bucket and key
    prefix pairs), pull its images (`repositories`), write only the given prefixes (`writes`:
    data capture, async output, batch output), use the data key, publish to the async
    notification topics; its own log group(s); network interfaces only in `vpc` when given.

    `allow_describe_alarms(names)`: a guarded rollout reads its rollback alarms with this
    role (SageMaker requires cloudwatch:DescribeAlarms on them).

    Exposes `role` and `policy`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        key: kms.IKey,
        reads: Sequence[tuple[s3.IBucket, str]],
        writes: Sequence[tuple[s3.IBucket, str]] = (),
        repositories: Sequence[ecr.IRepository] = (),
        topics: Sequence[sns.ITopic] = (),
        vpc: ec2.IVpc | None = None,
        transform_jobs: bool = False,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.role = role = iam.Role(
            self,
            "Role",
            # Only SageMaker of this account (confused-deputy conditions, as for the pipeline's role).
            assumed_by=iam.ServicePrincipal(
                SAGEMAKER,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(service="sagemaker", resource="*")},
                },
            ),
            description=f"SageMaker model {name}: reads its artifacts, writes its capture and outputs",
        )
        for bucket, prefix in reads:
            bucket.grant_read(role, f"{prefix}*")
        for bucket, prefix in writes:
            bucket.grant_put(role, f"{prefix}*")
        key.grant_encrypt_decrypt(role)
        for repository in repositories:
            repository.grant_pull(role)
        for topic in topics:
            topic.grant_publish(role)

        logs_arn = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group"
        groups = [ENDPOINT_LOG_GROUP.format(name=name)] + ([TRANSFORM_LOG_GROUP] if transform_jobs else [])
        log_groups = [f"{logs_arn}:{group}:*" for group in groups]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=log_groups,
            )
        )
        if vpc is not None:
            vpc_arn = f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:vpc/{vpc.vpc_id}"
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="NetworkInterfacesInTheVpcOnly",
                    actions=ENI_ACTIONS,
                    resources=["*"],
                    conditions={"ArnEqualsIfExists": {"ec2:Vpc": vpc_arn}},
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(sid="DescribeTheVpc", actions=VPC_DESCRIBE_ACTIONS, resources=["*"])
            )
        self._alarms_arn = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm"
        self.policy = policy = role.node.find_child("DefaultPolicy")
        iam5 = "AwsSolutions-IAM5"
        nag.acknowledge(
            policy,
            "grant_read/grant_put on the model's own artifact prefix and its capture/output prefixes: "
            "the buckets and prefixes are named; the wildcard is CDK's action set (versions, listing).",
            f"{iam5}[Action::s3:GetObject*]",
            f"{iam5}[Action::s3:GetBucket*]",
            f"{iam5}[Action::s3:List*]",
            # grant_put's multipart abort: only where the endpoint writes (capture, outputs).
            *([f"{iam5}[Action::s3:Abort*]"] if writes else []),
            *(
                f"{iam5}[Resource::{bucket.arn_for_objects(f'{prefix}*')}]"
                for bucket, prefix in (*reads, *writes)
            ),
        )
        nag.acknowledge(
            policy,
            "grant_encrypt_decrypt on the environment's one data key (named in Resource): the model reads "
            "encrypted artifacts and writes encrypted capture and outputs.",
            f"{iam5}[Action::kms:ReEncrypt*]",
            f"{iam5}[Action::kms:GenerateDataKey*]",
        )
        nag.acknowledge(
            policy,
            "Only actions that take no resource ARN: ecr:GetAuthorizationToken (grant_pull), EC2 Describe* "
            "of the VPC and the ENI actions SageMaker needs in a VPC (condition: ec2:Vpc is this VPC).",
            f"{iam5}[Resource::*]",
        )
        nag.acknowledge(
            policy,
            "The model's own log group(s); SageMaker names one stream per instance and job at run time.",
            *(f"{iam5}[Resource::{group}]" for group in log_groups),
        )
        nag.acknowledge(
            policy,
            "The role's own policy, generated by grant_* and kept with the one role it belongs to.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )

    def allow_describe_alarms(self, alarm_names: Sequence[str]) -> None:
        """cloudwatch:DescribeAlarms on exactly these alarms (a guarded rollout's rollback alarms)."""
        if alarm_names:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadRollbackAlarms",
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[f"{self._alarms_arn}:{name}" for name in alarm_names],
                )
            )
