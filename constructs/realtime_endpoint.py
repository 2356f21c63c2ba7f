"""A real-time SageMaker endpoint on instances: data capture, guarded rollouts, autoscaling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from constructs.inference_endpoint import InferenceEndpoint
from constructs.instance_endpoint_config import instance_endpoint_config
from constructs.served_model import ServedModel

STRATEGIES = ("all-at-once", "canary", "linear", "rolling")


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
        config = instance_endpoint_config(
            self,
            model=model,
            instance_type=instance_type,
            instance_count=instance_count,
            key=key,
            capture_destination=capture_destination,
            capture_sampling_percentage=capture_sampling_percentage,
        )
        self._create_endpoint(
            config, rollout.property() if rollout else None, keep_scaled_capacity=keep_scaled_capacity
        )
