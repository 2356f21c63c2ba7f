"""The endpoint config of an endpoint on instances (real-time, multi-model, asynchronous): one
variant, storage volumes encrypted with the customer key, optional data capture."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker

import constructs.acknowledge as nag
from constructs import Construct
from constructs.inference_endpoint import VARIANT_NAME
from constructs.served_model import ServedModel

CAPTURE_CONTENT_TYPES = {"csv": ["text/csv"], "json": ["application/json"]}


def instance_endpoint_config(
    scope: Construct,
    *,
    model: ServedModel,
    instance_type: str,
    instance_count: int,
    key: kms.IKey,
    capture_destination: str | None,
    capture_sampling_percentage: int,
    async_inference_config: sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty | None = None,
) -> sagemaker.CfnEndpointConfig:
    """`AWS::SageMaker::EndpointConfig` `Config` under `scope`: the `AllTraffic` variant of
    `model` on `instance_count` × `instance_type`, data capture to `capture_destination` when
    given, and the asynchronous settings when given."""
    config = sagemaker.CfnEndpointConfig(
        scope,
        "Config",
        production_variants=[
            sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=model.model_name,
                instance_type=instance_type,
                initial_instance_count=instance_count,
                initial_variant_weight=1.0,
            )
        ],
        kms_key_id=volume_key_arn(instance_type, key),
        async_inference_config=async_inference_config,
        data_capture_config=(
            capture_config(
                destination=capture_destination, key=key, sampling_percentage=capture_sampling_percentage
            )
            if capture_destination
            else None
        ),
    )
    if config.kms_key_id is None:
        nag.acknowledge(
            config,
            f"{instance_type} has local NVMe storage, which the instance encrypts in hardware; "
            "SageMaker refuses a KmsKeyId for it.",
            "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
        )
    return config


def capture_config(
    *, destination: str, key: kms.IKey, sampling_percentage: int
) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
    """Requests and responses, CSV and JSON, to `destination` (SageMaker appends
    `<endpoint>/<variant>/yyyy/mm/dd/hh/`), encrypted with `key`."""
    return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
        enable_capture=True,
        initial_sampling_percentage=sampling_percentage,
        destination_s3_uri=destination,
        kms_key_id=key.key_arn,
        capture_options=[
            sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode)
            for mode in ("Input", "Output")
        ],
        capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
            csv_content_types=CAPTURE_CONTENT_TYPES["csv"], json_content_types=CAPTURE_CONTENT_TYPES["json"]
        ),
    )


def volume_key_arn(instance_type: str, key: kms.IKey) -> str | None:
    """The key for the instances' storage volumes, or None for instance types with local NVMe
    storage (g4dn, g5, `d` families), for which SageMaker refuses a KmsKeyId (their local
    storage is encrypted by the hardware)."""
    family = instance_type.split(".")[1]
    return None if family in ("g4dn", "g5") or family.endswith("d") else key.key_arn
