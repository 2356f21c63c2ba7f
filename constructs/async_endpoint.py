"""An asynchronous SageMaker endpoint: requests queue, results land in S3, SNS tells the caller."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.inference_endpoint import InferenceEndpoint
from constructs.instance_endpoint_config import instance_endpoint_config
from constructs.served_model import ServedModel


class AsyncEndpoint(InferenceEndpoint):
    """Asynchronous endpoint on instances: results to `output_path`, failures to
    `failure_path` (both encrypted with `key`), success and error notifications on
    `success_topic` and `error_topic`, at most `max_concurrent_invocations_per_instance`
    requests per instance, optional data capture; an update keeps the scaled instance count
    (`keep_scaled_capacity`).  Backlog-based autoscaling, down to zero
    instances, is `EndpointAutoscaling(..., backlog_per_instance=...)`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        model: ServedModel,
        instance_type: str,
        instance_count: int,
        key: kms.IKey,
        output_path: str,
        failure_path: str,
        success_topic: sns.ITopic,
        error_topic: sns.ITopic,
        max_concurrent_invocations_per_instance: int,
        capture_destination: str | None = None,
        capture_sampling_percentage: int = 100,
        keep_scaled_capacity: bool = True,
    ) -> None:
        super().__init__(scope, id, endpoint_name=endpoint_name)
        self.output_path, self.failure_path = output_path, failure_path
        self.capture_destination = capture_destination
        config = instance_endpoint_config(
            self,
            model=model,
            instance_type=instance_type,
            instance_count=instance_count,
            key=key,
            capture_destination=capture_destination,
            capture_sampling_percentage=capture_sampling_percentage,
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=output_path,
                    s3_failure_path=failure_path,
                    kms_key_id=key.key_arn,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=success_topic.topic_arn,
                        error_topic=error_topic.topic_arn,
                        include_inference_response_in=[
                            "SUCCESS_NOTIFICATION_TOPIC",
                            "ERROR_NOTIFICATION_TOPIC",
                        ],
                    ),
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=max_concurrent_invocations_per_instance
                ),
            ),
        )
        self._create_endpoint(config, keep_scaled_capacity=keep_scaled_capacity)
