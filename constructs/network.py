"""Private networking for SageMaker jobs and endpoints."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Annotations, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

import constructs.acknowledge as nag
from constructs import Construct

# Interface endpoints SageMaker jobs and endpoints need when the VPC has no internet route.
INTERFACE_ENDPOINTS = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "FeatureStoreRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_FEATURESTORE_RUNTIME,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
}


class Network(Construct):
    """A VPC with private isolated subnets only (no internet or NAT), or an imported one.

    Created VPC: flow logs to a KMS-encrypted log group, the S3 gateway endpoint and the
    interface endpoints above, and the default security group stripped of its rules.
    Imported VPC (`vpc_id`, `subnet_ids`, `availability_zones`; no AWS lookups at synth): its
    owner keeps flow logs; endpoints are created only if `create_endpoints` is true.

    Exposes `vpc`, `subnets` (the selection SageMaker uses), `security_group` (for SageMaker
    jobs and endpoints), `endpoint_security_group`, `self_ingress` and `flow_log` (None when imported).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        cidr: str | None = None,
        availability_zones: Sequence[str],
        vpc_id: str | None = None,
        subnet_ids: Sequence[str] = (),
        create_endpoints: bool = True,
        flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
    ) -> None:
        super().__init__(scope, id)
        self.flow_log: ec2.FlowLog | None = None
        if vpc_id is None:
            if cidr is None:
                raise ValueError("Network: give either cidr (create) or vpc_id and subnet_ids (import)")
            self.vpc: ec2.IVpc = ec2.Vpc(
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
            log_group = logs.LogGroup(
                self,
                "FlowLogGroup",
                encryption_key=key,
                retention=flow_log_retention,
                removal_policy=RemovalPolicy.RETAIN,
            )
            self.flow_log = ec2.FlowLog(
                self,
                "FlowLog",
                resource_type=ec2.FlowLogResourceType.from_vpc(self.vpc),
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group),
                traffic_type=ec2.FlowLogTrafficType.ALL,
            )
            nag.acknowledge(
                self.flow_log.node.find_child("IAMRole").node.find_child("DefaultPolicy"),
                "CDK's FlowLog writes this policy for the role it owns: log-stream writes to this one "
                "log group and PassRole of that role only; it lives and dies with the role.",
                "NIST.800.53.R5-IAMNoInlinePolicy",
            )
        else:
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=vpc_id,
                availability_zones=list(availability_zones),
                isolated_subnet_ids=list(subnet_ids),
            )
            Annotations.of(self.vpc).acknowledge_warning(
                "@aws-cdk/aws-ec2:noSubnetRouteTableId",
                "Nothing here reads the imported subnets' route tables "
                "(no gateway endpoint is added to them).",
            )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.security_group = ec2.SecurityGroup(
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
            group_id=self.security_group.security_group_id,
            source_security_group_id=self.security_group.security_group_id,
            ip_protocol="-1",
            description="between members of the SageMaker security group",
        )
        nag.acknowledge(
            self.self_ingress,
            "The source is this security group itself (no address range): distributed training and "
            "processing instances exchange traffic on ports the frameworks pick at run time.",
            "NIST.800.53.R5-EC2RestrictedCommonPorts",
        )
        self.security_group.add_egress_rule(self.security_group, ec2.Port.all_traffic(), "between members")
        # HTTPS out: the subnets have no internet route, so this only reaches the VPC
        # endpoints (interface endpoints and the S3 gateway, whose prefix list needs a lookup).
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to VPC endpoints")

        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="VPC interface endpoints: HTTPS from the SageMaker security group only",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            self.security_group, ec2.Port.tcp(443), "HTTPS from SageMaker"
        )

        self.endpoints: dict[str, ec2.IVpcEndpoint] = {}
        if create_endpoints:
            self.endpoints["S3"] = self.vpc.add_gateway_endpoint(
                "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnets]
            )
            for name, service in INTERFACE_ENDPOINTS.items():
                self.endpoints[name] = self.vpc.add_interface_endpoint(
                    name,
                    service=service,
                    subnets=self.subnets,
                    security_groups=[self.endpoint_security_group],
                    private_dns_enabled=True,
                    open=False,
                )
