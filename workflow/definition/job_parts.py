"""What every job step of the definition shares: output locations, network, cache, retries.

The steps themselves (`build.py`) only say what differs: their inputs, outputs and arguments.
"""

from __future__ import annotations

from typing import Any

from pipeline_steps.common.contract import OPT_ML
from workflow.definition import placeholders as s
from workflow.definition.placeholders import placeholder
from workflow.definition.sdk import SENTINEL_ROLE_ARN
from workflow.definition.settings import PipelineSettings

PROCESSING = f"{OPT_ML}/processing"


class JobParts:
    def __init__(self, settings: PipelineSettings, session: Any) -> None:
        from sagemaker.core.workflow.execution_variables import ExecutionVariables

        self.settings = settings
        self.session = session
        self.execution_variables = ExecutionVariables
        self.execution_id = ExecutionVariables.PIPELINE_EXECUTION_ID

    def output_uri(self, step: str, name: str) -> Any:
        """s3://<artifacts>/<pipeline>/<execution id>/<step>/<name>: one folder per run."""
        from sagemaker.core.workflow.functions import Join

        return Join(
            on="/",
            values=[
                f"s3://{placeholder(s.ARTIFACT_BUCKET)}",
                self.settings.pipeline_name,
                self.execution_id,
                step.lower(),
                name,
            ],
        )

    def network(self, isolated: bool = True) -> Any:
        from sagemaker.core.network import NetworkConfig

        subnets = [placeholder(s.subnet_placeholder(i)) for i in range(self.settings.subnet_count)]
        return NetworkConfig(
            enable_network_isolation=isolated,
            encrypt_inter_container_traffic=True,
            security_group_ids=[placeholder(s.SECURITY_GROUP)] if subnets else None,
            subnets=subnets or None,
        )

    def cache(self) -> Any:
        from sagemaker.mlops.workflow.steps import CacheConfig

        return CacheConfig(enable_caching=True, expire_after="P30D")

    def retries(self) -> Any:
        from sagemaker.mlops.workflow.retry import (
            SageMakerJobExceptionTypeEnum,
            SageMakerJobStepRetryPolicy,
            StepExceptionTypeEnum,
            StepRetryPolicy,
        )

        return [
            StepRetryPolicy(
                exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
                backoff_rate=2.0,
                interval_seconds=30,
                max_attempts=3,
            ),
            SageMakerJobStepRetryPolicy(
                exception_types=[
                    SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                    SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                    SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                ],
                backoff_rate=2.0,
                interval_seconds=60,
                max_attempts=3,
            ),
        ]

    def processor(self, step: str, instance_type: Any, instance_count: Any, *, isolated: bool = True) -> Any:
        from sagemaker.core.processing import Processor

        return Processor(
            role=SENTINEL_ROLE_ARN,
            image_uri=placeholder(s.IMAGE_PLACEHOLDERS[step]),
            instance_type=instance_type,
            instance_count=instance_count,
            entrypoint=["python", "-m", f"pipeline_steps.{step}"],
            volume_size_in_gb=30,
            volume_kms_key=placeholder(s.KMS_KEY),
            output_kms_key=placeholder(s.KMS_KEY),
            max_runtime_in_seconds=self.settings.max_runtime_seconds,
            base_job_name=step,
            sagemaker_session=self.session,
            network_config=self.network(isolated),
        )

    @staticmethod
    def s3_input(name: str, uri: Any, local: str, distribution: str = "FullyReplicated") -> Any:
        from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri,
                local_path=local,
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type=distribution,
            ),
        )

    def s3_output(self, step: str, name: str) -> Any:
        from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=self.output_uri(step, name),
                local_path=f"{PROCESSING}/output/{name}",
                s3_upload_mode="EndOfJob",
            ),
        )
