"""A real-time SageMaker endpoint on instances: data capture, guarded rollouts, autoscaling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker

import constructs.acknowledge as nag
from constructs import Construct
from constructs.inference_endpoint import VARIANT_NAME, InferenceEndpoint
from constructs.served_model import ServedModel

STRATEGIES = ("all-at-once", "canary", "linear", "rolling")
CAPTURE_CONTENT_TYPES = {"csv": ["text/csv"], "json": ["application/json"]}


@dataclass(frozen=True)
class GuardedRollout:
    """`DeploymentConfig`: blue/green (`all-at-once`, `canary`, `linear`) or `rolling`, rolled
    back automatically when any of `rollback_alarm_names` fires during the rollout."""

    strategy: str
    rollback_alarm_names: Sequence[str]
    step_percent: int = 10
    wait_s: int = 300
    termination_wait_s: int = 300
    max_execution_s: int = 3600

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"GuardedRollout: strategy {self.strategy!r}: expected one of {list(STRATEGIES)}"
            )
        if not self.rollback_alarm_names:
            raise ValueError("GuardedRollout: a guarded rollout needs at least one rollback alarm")

    def property(self) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        rollback = sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[
                sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name) for name in self.rollback_alarm_names
            ]
        )
        step = sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=self.step_percent)
        if self.strategy == "rolling":
            return sagemaker.CfnEndpoint.DeploymentConfigProperty(
                auto_rollback_configuration=rollback,
                rolling_update_policy=sagemaker.CfnEndpoint.RollingUpdatePolicyProperty(
                    maximum_batch_size=step,
                    wait_interval_in_seconds=self.wait_s,
                    maximum_execution_timeout_in_seconds=self.max_execution_s,
                    rollback_maximum_batch_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                        type="CAPACITY_PERCENT", value=100
                    ),
                ),
            )
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type=self.strategy.upper().replace("-", "_"),  # ALL_AT_ONCE | CANARY | LINEAR
            wait_interval_in_seconds=self.wait_s if self.strategy != "all-at-once" else None,
            canary_size=step if self.strategy == "canary" else None,
            linear_step_size=step if self.strategy == "linear" else None,
        )
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=rollback,
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=routing,
                termination_wait_in_seconds=self.termination_wait_s,
                maximum_execution_timeout_in_seconds=self.max_execution_s,
            ),
        )


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


class RealtimeEndpoint(InferenceEndpoint):
    """Real-time endpoint: one `AllTraffic` variant of `model` on `instance_count` instances of
    `instance_type` (volumes encrypted with `key`), data capture to `capture_destination` when
    given, and a guarded rollout (`rollout`) for every update of the endpoint config.
    Autoscaling is a separate construct (`EndpointAutoscaling`); with `keep_scaled_capacity`
    (the default) an update keeps the instance count it has set.
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
        capture_destination: str | None = None,
        capture_sampling_percentage: int = 100,
        rollout: GuardedRollout | None = None,
        keep_scaled_capacity: bool = True,
    ) -> None:
        super().__init__(scope, id, endpoint_name=endpoint_name)
        self.capture_destination = capture_destination
        config = sagemaker.CfnEndpointConfig(
            self,
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
        self._create_endpoint(
            config, rollout.property() if rollout else None, keep_scaled_capacity=keep_scaled_capacity
        )
