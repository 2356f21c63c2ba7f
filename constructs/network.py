"""Private networking for SageMaker jobs and endpoints."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Annotations, CfnResource, DefaultStackSynthesizer, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

import constructs.acknowledge as nag
from constructs import Construct
from constructs.encrypted_log_group import EncryptedLogGroup

# Interface endpoints SageMaker jobs and endpoints need when the VPC has no internet route, with
# the IAM service prefix each one carries.
INTERFACE_ENDPOINTS = {
    "SageMakerApi": (ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API, "sagemaker"),
    "SageMakerRuntime": (ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME, "sagemaker"),
    # The IngestFeatures step writes records through the Feature Store runtime.
    "FeatureStoreRuntime": (ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_FEATURESTORE_RUNTIME, "sagemaker"),
    "EcrApi": (ec2.InterfaceVpcEndpointAwsService.ECR, "ecr"),
    "EcrDocker": (ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER, "ecr"),
    "Logs": (ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS, "logs"),
    "Monitoring": (ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING, "cloudwatch"),
    "Sts": (ec2.InterfaceVpcEndpointAwsService.STS, "sts"),
    "Kms": (ec2.InterfaceVpcEndpointAwsService.KMS, "kms"),
}
# What jobs do with S3 through the gateway endpoint.
S3_ACTIONS = [
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:ListBucket",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
]
# The VPC's own custom resource (CDK's restrictDefaultSecurityGroup) and its Lambda provider.
_RESTRICT_DEFAULT_SG = "RestrictDefaultSecurityGroupCustomResource"
_RESTRICT_DEFAULT_SG_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"


class Network(Construct):
    """A VPC with private isolated subnets only (no internet or NAT), or an imported one.

    Created VPC: flow logs to `log_group_name` (KMS-encrypted with `log_key`), the S3 gateway
    endpoint and the interface endpoints above, each with a policy (S3: the project's buckets
    `<bucket_prefix>-*` in this account, the CDK asset bucket and ECR's layer bucket; interface
    endpoints: only this account's principals, ECR only its repositories), and the default
    security group stripped of its rules (its custom resource's Lambda log group declared too).
    Imported VPC (`vpc_id`, `subnet_ids`, `availability_zones`; no AWS lookups at synth): its
    owner keeps flow logs and endpoints; `endpoint_security_group_id` is the group of its
    interface endpoints.

    The SageMaker security group reaches only itself, the interface endpoints (443) and S3
    through `s3_prefix_list_id` (443).  Exposes `vpc`, `subnets` (the selection SageMaker uses),
    `security_group`, `endpoint_security_group` (None when imported), `self_ingress`,
    `endpoints` by name and `flow_log` (None when imported).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        log_key: kms.IKey,
        s3_prefix_list_id: str,
        bucket_prefix: str,
        log_group_name: str,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
        availability_zones: Sequence[str],
        cidr: str | None = None,
        vpc_id: str | None = None,
        subnet_ids: Sequence[str] = (),
        endpoint_security_group_id: str | None = None,
        aws_image_repositories: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id)
        self._aws_image_repositories = list(aws_image_repositories)
        self._log_key, self._log_retention_days, self._removal_policy = (
            log_key,
            log_retention_days,
            removal_policy,
        )
        self.flow_log: ec2.FlowLog | None = None
        self.endpoints: dict[str, ec2.IVpcEndpoint] = {}
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        if vpc_id is None:
            if cidr is None:
                raise ValueError("Network: give either cidr (create) or vpc_id and subnet_ids (import)")
            self.vpc: ec2.IVpc = self._create_vpc(cidr, availability_zones)
            self._add_flow_logs(log_group_name)
            self._declare_default_security_group_lambda_logs()
        else:
            if endpoint_security_group_id is None:
                raise ValueError("Network: an imported VPC needs endpoint_security_group_id")
            self.vpc = self._import_vpc(vpc_id, subnet_ids, availability_zones)
        self.security_group = self._sagemaker_security_group()
        self.endpoint_security_group: ec2.ISecurityGroup | None = None
        if vpc_id is None:
            self.endpoint_security_group = self._endpoint_security_group()
            self._add_endpoints(self.endpoint_security_group, bucket_prefix)
            endpoints_peer: ec2.IPeer = self.endpoint_security_group
        else:
            endpoints_peer = ec2.SecurityGroup.from_security_group_id(
                self, "ImportedEndpointSecurityGroup", str(endpoint_security_group_id), mutable=False
            )
        self._restrict_egress(endpoints_peer, s3_prefix_list_id)

    def _create_vpc(self, cidr: str, availability_zones: Sequence[str]) -> ec2.Vpc:
        return ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            # Explicit zones: no availability-zone lookup (an AWS call) at synth.
            availability_zones=list(availability_zones),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20
                )
            ],
            restrict_default_security_group=True,
        )

    def _import_vpc(
        self, vpc_id: str, subnet_ids: Sequence[str], availability_zones: Sequence[str]
    ) -> ec2.IVpc:
        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=vpc_id,
            availability_zones=list(availability_zones),
            isolated_subnet_ids=list(subnet_ids),
        )
        Annotations.of(vpc).acknowledge_warning(
            "@aws-cdk/aws-ec2:noSubnetRouteTableId",
            "Nothing here reads the imported subnets' route tables (no gateway endpoint is added to them).",
        )
        return vpc

    def _log_group(self, id: str, name: str) -> EncryptedLogGroup:
        return EncryptedLogGroup(
            self,
            id,
            log_group_name=name,
            key=self._log_key,
            retention_days=self._log_retention_days,
            removal_policy=self._removal_policy,
        )

    def _add_flow_logs(self, log_group_name: str) -> None:
        """Every flow of the VPC into a declared, encrypted log group, written by a role that
        only VPC Flow Logs of this account may assume."""
        stack = Stack.of(self)
        log_group = self._log_group("FlowLogGroup", log_group_name).log_group
        role = iam.Role(
            self,
            "FlowLogRole",
            assumed_by=iam.ServicePrincipal(
                "vpc-flow-logs.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="ec2", resource="vpc-flow-log", resource_name="*"
                        )
                    },
                },
            ),
            description="VPC Flow Logs writes this VPC's flow log records",
        )
        self.flow_log = ec2.FlowLog(
            self,
            "FlowLog",
            resource_type=ec2.FlowLogResourceType.from_vpc(self.vpc),
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group, role),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        nag.acknowledge(
            role.node.find_child("DefaultPolicy"),
            "CDK's FlowLog grants this role CreateLogStream, PutLogEvents and DescribeLogStreams on the one "
            "flow-log group and nothing else; the policy lives and dies with the role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
        )

    def _declare_default_security_group_lambda_logs(self) -> None:
        """CDK's custom resource that empties the default security group runs a Lambda; its log
        group is declared (before the resource runs) so it has a retention and the key."""
        stack = Stack.of(self)
        provider = stack.node.try_find_child(_RESTRICT_DEFAULT_SG_PROVIDER)
        custom_resource = self.vpc.node.try_find_child(_RESTRICT_DEFAULT_SG)
        if provider is None or custom_resource is None:
            raise ValueError("Network: CDK's default-security-group custom resource moved; update the lookup")
        handler = provider.node.find_child("Handler")
        assert isinstance(handler, CfnResource)
        group = self._log_group(
            "RestrictDefaultSecurityGroupLogs", Fn.join("", ["/aws/lambda/", handler.ref])
        )
        custom_resource.node.add_dependency(group)

    def _sagemaker_security_group(self) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "SageMakerSecurityGroup",
            vpc=self.vpc,
            description="SageMaker jobs and endpoints: no ingress except from members of this group",
            allow_all_outbound=False,
        )
        # Multi-instance training and processing talk between their own instances, on ports the
        # frameworks choose.  An explicit resource, so its acknowledgement covers only this rule.
        self.self_ingress = ec2.CfnSecurityGroupIngress(
            self,
            "SageMakerSelfIngress",
            group_id=group.security_group_id,
            source_security_group_id=group.security_group_id,
            ip_protocol="-1",
            description="between members of the SageMaker security group",
        )
        nag.acknowledge(
            self.self_ingress,
            "The source is this security group itself (no address range): distributed training and "
            "processing instances exchange traffic on ports the frameworks pick at run time.",
            "NIST.800.53.R5-EC2RestrictedCommonPorts",
        )
        group.add_egress_rule(group, ec2.Port.all_traffic(), "between members")
        return group

    def _restrict_egress(self, endpoints: ec2.IPeer, s3_prefix_list_id: str) -> None:
        """HTTPS out to the interface endpoints and to S3 (the gateway endpoint's prefix list):
        nothing else, not even an address range."""
        self.security_group.add_egress_rule(endpoints, ec2.Port.tcp(443), "HTTPS to the interface endpoints")
        self.security_group.add_egress_rule(
            ec2.Peer.prefix_list(s3_prefix_list_id), ec2.Port.tcp(443), "HTTPS to S3 (gateway endpoint)"
        )

    def _endpoint_security_group(self) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="VPC interface endpoints: HTTPS from the SageMaker security group only",
            allow_all_outbound=False,
        )
        group.add_ingress_rule(self.security_group, ec2.Port.tcp(443), "HTTPS from SageMaker")
        return group

    def _add_endpoints(self, endpoint_security_group: ec2.ISecurityGroup, bucket_prefix: str) -> None:
        stack = Stack.of(self)
        gateway = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnets]
        )
        for statement in s3_endpoint_statements(stack, bucket_prefix):
            gateway.add_to_policy(statement)
        self.endpoints["S3"] = gateway
        # The retraining trigger's cooldown and trigger log (a gateway endpoint: no cost).
        dynamodb = self.vpc.add_gateway_endpoint(
            "DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets=[self.subnets]
        )
        for statement in dynamodb_endpoint_statements(stack):
            dynamodb.add_to_policy(statement)
        self.endpoints["DynamoDb"] = dynamodb
        for name, (service, prefix) in INTERFACE_ENDPOINTS.items():
            endpoint = self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.subnets,
                security_groups=[endpoint_security_group],
                private_dns_enabled=True,
                open=False,
            )
            for statement in interface_endpoint_statements(stack, prefix, self._aws_image_repositories):
                endpoint.add_to_policy(statement)
            self.endpoints[name] = endpoint


def s3_endpoint_statements(stack: Stack, bucket_prefix: str) -> list[iam.PolicyStatement]:
    """The S3 gateway carries only: the project's buckets in this account, the CDK asset bucket
    (the feature spec) and ECR's image-layer bucket (image pulls go through S3)."""
    account, region = stack.account, stack.region
    assets = f"cdk-{DefaultStackSynthesizer.DEFAULT_QUALIFIER}-assets-{account}-{region}"

    def s3_arn(resource: str) -> str:
        return stack.format_arn(service="s3", region="", account="", resource=resource)

    project = [s3_arn(f"{bucket_prefix}-*"), s3_arn(f"{bucket_prefix}-*/*")]
    return [
        iam.PolicyStatement(
            sid="ProjectBucketsInThisAccount",
            principals=[iam.AnyPrincipal()],
            actions=S3_ACTIONS,
            resources=project,
            conditions={"StringEquals": {"aws:ResourceAccount": account}},
        ),
        iam.PolicyStatement(
            sid="CdkAssetObjects",
            principals=[iam.AnyPrincipal()],
            actions=["s3:GetObject"],
            resources=[s3_arn(f"{assets}/*")],
            conditions={"StringEquals": {"aws:ResourceAccount": account}},
        ),
        iam.PolicyStatement(
            sid="EcrImageLayers",
            principals=[iam.AnyPrincipal()],
            actions=["s3:GetObject"],
            resources=[s3_arn(f"prod-{region}-starport-layer-bucket/*")],
        ),
    ]


# What the retraining trigger does with its table (workflow/functions/retraining_trigger).
DYNAMODB_ACTIONS = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]


def dynamodb_endpoint_statements(stack: Stack) -> list[iam.PolicyStatement]:
    """The DynamoDB gateway carries only this account's principals, to this account's tables in
    this region, with the item calls the retraining trigger makes. The trigger table lives in the
    monitoring stack, deployed after this one, so its generated name cannot be named here."""
    return [
        iam.PolicyStatement(
            sid="ThisAccountsTablesItemCalls",
            principals=[iam.AnyPrincipal()],
            actions=DYNAMODB_ACTIONS,
            resources=[stack.format_arn(service="dynamodb", resource="table", resource_name="*")],
            conditions={
                "StringEquals": {"aws:PrincipalAccount": stack.account, "aws:ResourceAccount": stack.account}
            },
        )
    ]


ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def interface_endpoint_statements(
    stack: Stack, service_prefix: str, aws_image_repositories: Sequence[str] = ()
) -> list[iam.PolicyStatement]:
    """An interface endpoint carries only this account's principals, to its own service (ECR:
    to this account's repositories and the named repositories of AWS's own images, such as the
    Spark processing image, plus the token call that names no resource)."""
    in_account = {"StringEquals": {"aws:PrincipalAccount": stack.account}}
    if service_prefix != "ecr":
        return [
            iam.PolicyStatement(
                sid="ThisAccountsPrincipals",
                principals=[iam.AnyPrincipal()],
                actions=[f"{service_prefix}:*"],
                resources=["*"],
                conditions=in_account,
            )
        ]
    return [
        iam.PolicyStatement(
            sid="ThisAccountsRepositories",
            principals=[iam.AnyPrincipal()],
            actions=ECR_PULL_ACTIONS,
            resources=[stack.format_arn(service="ecr", resource="repository", resource_name="*")],
            conditions=in_account,
        ),
        *(
            [
                iam.PolicyStatement(
                    sid="AwsImageRepositories",
                    principals=[iam.AnyPrincipal()],
                    actions=ECR_PULL_ACTIONS,
                    resources=list(aws_image_repositories),
                    conditions=in_account,
                )
            ]
            if aws_image_repositories and service_prefix == "ecr"
            else []
        ),
        iam.PolicyStatement(
            sid="AuthorizationToken",
            principals=[iam.AnyPrincipal()],
            actions=["ecr:GetAuthorizationToken"],
            resources=["*"],
            conditions=in_account,
        ),
    ]
