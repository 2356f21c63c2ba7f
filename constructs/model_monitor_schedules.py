"""Optional SageMaker Model Monitor schedules, for accounts that still have Model Monitor
(closed to new customers): a data-quality and a model-quality schedule on the endpoint, fed by
the same baseline files as the project's own monitor (the launcher copies the serving
version's statistics.json and constraints.json to `baseline_uri` on every run)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct

ANALYZER = "sagemaker-model-monitor-analyzer"


def analyzer_image(region: str) -> str:
    """Model Monitor's prebuilt image in `region`, from the SageMaker SDK's own registry table."""
    import sagemaker as sdk

    table = Path(sdk.__file__).parent / "core" / "image_uri_config" / "model-monitor.json"
    registries = json.loads(table.read_text())["versions"][""]["registries"]
    if region not in registries:
        raise ValueError(f"Model Monitor has no analyzer image in {region} (monitoring.model_monitor)")
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{registries[region]}.dkr.ecr.{region}.{domain}/{ANALYZER}"


def model_monitor_cron(expression: str) -> str:
    """Model Monitor takes hourly or daily cron expressions only."""
    return "cron(0 * ? * * *)" if expression == "rate(1 hour)" else "cron(0 0 ? * * *)"


class ModelMonitorSchedules(Construct):
    """Exposes `data_quality`, `model_quality` (job definitions) and `schedules`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        baseline_uri: str,
        ground_truth_uri: str,
        output_uri: str,
        schedule_expression: str,
        role: iam.IRole,
        key_arn: str,
        instance_type: str,
        subnet_ids: Sequence[str],
        security_group_id: str,
    ) -> None:
        super().__init__(scope, id)
        image = analyzer_image(Stack.of(self).region)
        # plain camelCase mappings (jsii passes them as they are), shared by both job definitions
        resources = {
            "clusterConfig": {
                "instanceCount": 1,
                "instanceType": instance_type,
                "volumeSizeInGb": 30,
                "volumeKmsKeyId": key_arn,
            }
        }
        network = {
            "enableNetworkIsolation": True,
            "enableInterContainerTrafficEncryption": True,
            "vpcConfig": {"securityGroupIds": [security_group_id], "subnets": list(subnet_ids)},
        }

        def output(kind: str) -> dict:
            return {
                "kmsKeyId": key_arn,
                "monitoringOutputs": [
                    {
                        "s3Output": {
                            "localPath": "/opt/ml/processing/output",
                            "s3Uri": f"{output_uri}/{kind}",
                            "s3UploadMode": "EndOfJob",
                        }
                    }
                ],
            }

        stopping = {"maxRuntimeInSeconds": 3300}
        self.data_quality = sagemaker.CfnDataQualityJobDefinition(
            self,
            "DataQuality",
            job_definition_name=f"{endpoint_name}-data-quality"[:63],
            data_quality_app_specification={"imageUri": image},
            data_quality_baseline_config={
                "constraintsResource": {"s3Uri": f"{baseline_uri}/constraints.json"},
                "statisticsResource": {"s3Uri": f"{baseline_uri}/statistics.json"},
            },
            data_quality_job_input={
                "endpointInput": {
                    "endpointName": endpoint_name,
                    "localPath": "/opt/ml/processing/input/endpoint",
                    "s3DataDistributionType": "FullyReplicated",
                    "s3InputMode": "File",
                }
            },
            data_quality_job_output_config=output("data-quality"),
            job_resources=resources,
            network_config=network,
            role_arn=role.role_arn,
            stopping_condition=stopping,
        )
        self.model_quality = sagemaker.CfnModelQualityJobDefinition(
            self,
            "ModelQuality",
            job_definition_name=f"{endpoint_name}-model-quality"[:63],
            model_quality_app_specification={"imageUri": image, "problemType": "BinaryClassification"},
            model_quality_job_input={
                "endpointInput": {
                    "endpointName": endpoint_name,
                    "localPath": "/opt/ml/processing/input/endpoint",
                    "s3DataDistributionType": "FullyReplicated",
                    "s3InputMode": "File",
                    # the serving CSV answer is `probability,label`
                    "probabilityAttribute": "0",
                    "inferenceAttribute": "1",
                },
                "groundTruthS3Input": {"s3Uri": ground_truth_uri},
            },
            model_quality_job_output_config=output("model-quality"),
            job_resources=resources,
            network_config=network,
            role_arn=role.role_arn,
            stopping_condition=stopping,
        )
        cron = model_monitor_cron(schedule_expression)
        self.schedules = []
        for kind, definition in (("DataQuality", self.data_quality), ("ModelQuality", self.model_quality)):
            schedule = sagemaker.CfnMonitoringSchedule(
                self,
                f"{kind}Schedule",
                monitoring_schedule_name=f"{endpoint_name}-{kind.lower()}"[:63],
                monitoring_schedule_config={
                    "monitoringJobDefinitionName": definition.job_definition_name,
                    "monitoringType": kind,
                    "scheduleConfig": {"scheduleExpression": cron},
                },
            )
            schedule.node.add_dependency(definition)
            self.schedules.append(schedule)
