"""Application Auto Scaling for one SageMaker endpoint variant."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch

from constructs import Construct
from constructs.inference_endpoint import InferenceEndpoint

INSTANCES = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"


class EndpointAutoscaling(Construct):
    """A scalable target on `endpoint`'s variant (Application Auto Scaling's service-linked
    role, no role of ours) with one of:

    - `invocations_per_instance`: target tracking on SageMakerVariantInvocationsPerInstance
      (real-time and multi-model endpoints);
    - `backlog_per_instance`: target tracking on the async queue's
      ApproximateBacklogSizePerInstance, plus a step policy that starts one instance when
      requests wait with none running (HasBacklogWithoutCapacity): with `min_capacity` 0 the
      endpoint scales to zero when the queue is empty and back up when a request arrives;
    - `provisioned_concurrency_utilization`: target tracking on a serverless endpoint's
      provisioned concurrency (the dimension is then DesiredProvisionedConcurrency).

    Exposes `target`, `policy` and, for async, `scale_from_zero` (the step policy) and
    `backlog_alarm`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint: InferenceEndpoint,
        min_capacity: int,
        max_capacity: int,
        invocations_per_instance: int | None = None,
        backlog_per_instance: int | None = None,
        provisioned_concurrency_utilization: float | None = None,
        scale_in_cooldown_s: int = 300,
        scale_out_cooldown_s: int = 60,
    ) -> None:
        super().__init__(scope, id)
        given = [
            v is not None
            for v in (invocations_per_instance, backlog_per_instance, provisioned_concurrency_utilization)
        ]
        if sum(given) != 1:
            raise ValueError(
                "EndpointAutoscaling: give exactly one of invocations_per_instance, backlog_per_instance, "
                "provisioned_concurrency_utilization"
            )
        if min_capacity == 0 and backlog_per_instance is None:
            raise ValueError(
                "EndpointAutoscaling: only asynchronous endpoints scale to zero (min_capacity 0)"
            )
        serverless = provisioned_concurrency_utilization is not None
        self.target = appscaling.CfnScalableTarget(
            self,
            "Target",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{endpoint.endpoint_name}/variant/{endpoint.variant_name}",
            scalable_dimension=PROVISIONED_CONCURRENCY if serverless else INSTANCES,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )
        self.target.node.add_dependency(endpoint.endpoint)  # the variant exists before it is registered
        dimensions = [
            appscaling.CfnScalingPolicy.MetricDimensionProperty(
                name="EndpointName", value=endpoint.endpoint_name
            )
        ]
        if invocations_per_instance is not None:
            metric = appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(invocations_per_instance),
                predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                scale_in_cooldown=scale_in_cooldown_s,
                scale_out_cooldown=scale_out_cooldown_s,
            )
        elif serverless:
            metric = appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(provisioned_concurrency_utilization or 0),
                predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantProvisionedConcurrencyUtilization"
                ),
                scale_in_cooldown=scale_in_cooldown_s,
                scale_out_cooldown=scale_out_cooldown_s,
            )
        else:
            metric = appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(backlog_per_instance or 0),
                customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metric_name="ApproximateBacklogSizePerInstance",
                    namespace="AWS/SageMaker",
                    dimensions=dimensions,
                    statistic="Average",
                ),
                scale_in_cooldown=scale_in_cooldown_s,
                scale_out_cooldown=scale_out_cooldown_s,
            )
        self.policy = appscaling.CfnScalingPolicy(
            self,
            "TargetTracking",
            policy_name=f"{endpoint.endpoint_name}-target-tracking",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.target.ref,
            target_tracking_scaling_policy_configuration=metric,
        )
        self.scale_from_zero: appscaling.CfnScalingPolicy | None = None
        self.backlog_alarm: cloudwatch.Alarm | None = None
        if backlog_per_instance is not None:
            # Target tracking alone starts the first instance only once the backlog exceeds
            # the target; this policy starts it as soon as one request waits with none running.
            self.scale_from_zero = appscaling.CfnScalingPolicy(
                self,
                "ScaleFromZero",
                policy_name=f"{endpoint.endpoint_name}-scale-from-zero",
                policy_type="StepScaling",
                scaling_target_id=self.target.ref,
                step_scaling_policy_configuration=appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
                    adjustment_type="ChangeInCapacity",
                    metric_aggregation_type="Average",
                    cooldown=scale_out_cooldown_s,
                    step_adjustments=[
                        appscaling.CfnScalingPolicy.StepAdjustmentProperty(
                            metric_interval_lower_bound=0, scaling_adjustment=1
                        )
                    ],
                ),
            )
            self.backlog_alarm = cloudwatch.Alarm(
                self,
                "HasBacklogWithoutCapacity",
                alarm_name=f"{endpoint.endpoint_name}-backlog-without-capacity",
                alarm_description="Requests wait and no instance runs: start one (scale from zero).",
                metric=cloudwatch.Metric(
                    namespace="AWS/SageMaker",
                    metric_name="HasBacklogWithoutCapacity",
                    dimensions_map={"EndpointName": endpoint.endpoint_name},
                    statistic="Average",
                    period=Duration.minutes(1),
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=2,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm = self.backlog_alarm.node.default_child
            assert isinstance(alarm, cloudwatch.CfnAlarm)
            alarm.alarm_actions = [self.scale_from_zero.ref]
