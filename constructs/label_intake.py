"""Label intake: every late-label file that lands under the endpoint's ground-truth prefix is
validated at once (S3 -> EventBridge -> function); rejected lines are kept with their reason
and counted.  (Code: workflow/functions/label_intake/handler.py, packed together with the one
shared module whose rules it applies, pipeline_steps/common/ground_truth.py.)"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import IgnoreMode
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

import constructs.acknowledge as nag
from config import REPO_ROOT
from constructs import Construct
from constructs.prefix_access import grant_read_prefix, grant_write_prefix
from constructs.vpc_function import FunctionLogs, VpcFunction

# Docker-ignore rules over the repository root: only these files go into the package.
PACKAGE = [
    "*",
    "!workflow",
    "workflow/*",
    "!workflow/__init__.py",
    "!workflow/functions",
    "workflow/functions/*",
    "!workflow/functions/label_intake",
    "!pipeline_steps",
    "pipeline_steps/*",
    "!pipeline_steps/__init__.py",
    "!pipeline_steps/common",
    "pipeline_steps/common/*",
    "!pipeline_steps/common/__init__.py",
    "!pipeline_steps/common/ground_truth.py",
    "**/__pycache__",
]


class LabelIntake(Construct):
    """Exposes `function` (VpcFunction) and `rule`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        capture_bucket: s3.IBucket,
        ground_truth_prefix: str,
        positive_labels_json: str,
        metric_namespace: str,
        key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        logs: FunctionLogs,
    ) -> None:
        super().__init__(scope, id)
        self.function = VpcFunction(
            self,
            "Function",
            code=lambda_.Code.from_asset(str(REPO_ROOT), ignore_mode=IgnoreMode.DOCKER, exclude=PACKAGE),
            handler="workflow.functions.label_intake.handler.lambda_handler",
            description=f"Validates late labels of {endpoint_name} as they arrive",
            environment={
                "POSITIVE_LABELS": positive_labels_json,
                "KMS_KEY_ARN": key.key_arn,
                "METRIC_NAMESPACE": metric_namespace,
            },
            key=key,
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            logs=logs,
        )
        role = self.function.role
        output_prefixes = {
            "WriteRejected": f"ground-truth-rejected/{endpoint_name}",
            "WriteValidated": f"ground-truth-validated/{endpoint_name}",
        }
        outputs = [f"{p}/*" for p in output_prefixes.values()]
        grant_read_prefix(role, capture_bucket, ground_truth_prefix, "ReadLabels")
        for sid, prefix in output_prefixes.items():
            grant_write_prefix(role, capture_bucket, prefix, sid)
        key.grant_encrypt_decrypt(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PutLabelMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace}},
            )
        )
        self.rule = events.Rule(
            self,
            "LabelsArrived",
            description=f"A late-label file arrived for {endpoint_name}: validate it",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [capture_bucket.bucket_name]},
                    "object": {"key": [{"prefix": f"{ground_truth_prefix}/"}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.function.function,
                    dead_letter_queue=self.function.dead_letter_queue,
                    retry_attempts=3,
                )
            ],
        )
        iam5 = "AwsSolutions-IAM5"
        nag.acknowledge(
            self.function.policy,
            "Reads label files under the endpoint's ground-truth prefix and writes rejected lines and "
            "reports under its two output prefixes (keys carry the arrival hour), prefix-scoped "
            "(constructs/prefix_access.py); KMS wildcards are grant_encrypt_decrypt on the one data "
            "key; PutMetricData takes no resource (condition: the monitoring namespace).",
            f"{iam5}[Action::kms:ReEncrypt*]",
            f"{iam5}[Action::kms:GenerateDataKey*]",
            f"{iam5}[Resource::{capture_bucket.arn_for_objects(f'{ground_truth_prefix}/*')}]",
            *(f"{iam5}[Resource::{capture_bucket.arn_for_objects(p)}]" for p in outputs),
        )
