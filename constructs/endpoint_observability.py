"""A CloudWatch dashboard and alarms for one SageMaker endpoint, alarms to an encrypted topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.inference_endpoint import VARIANT_NAME

INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
KINDS = ("realtime", "serverless", "async", "multi-model")
PERIOD = Duration.minutes(1)


@dataclass(frozen=True)
class AlarmThresholds:
    p99_latency_ms: int = 500
    error_rate_percent: float = 1.0
    no_invocations_minutes: int | None = None  # None: no alarm on silence


class EndpointObservability(Construct):
    """For the endpoint `endpoint_name` (of `kind`; names only, so alarms a rollout watches can
    exist before the endpoint): a dashboard named after the endpoint with invocations, 4xx
    and 5xx, model and overhead latency (p50, p99), CPU, memory, disk and instance count (for
    instance kinds), cold starts (serverless) and the backlog (async); and alarms to `topic`:

    - `<endpoint>-5xx-rate`: 5xx responses above `error_rate_percent` % of invocations;
    - `<endpoint>-p99-latency`: ModelLatency p99 above `p99_latency_ms`;
    - `<endpoint>-model-errors`: model errors (async: failed invocations) on 3 of 5 minutes;
    - `<endpoint>-no-invocations`: no request for `no_invocations_minutes`, when set.

    `rollback_alarms` are the first two (5xx rate and p99 latency): what a guarded rollout
    watches.  Exposes `dashboard`, `alarms` (by short name) and `rollback_alarms`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        kind: str,
        topic: sns.ITopic,
        thresholds: AlarmThresholds,
    ) -> None:
        super().__init__(scope, id)
        if kind not in KINDS:
            raise ValueError(f"EndpointObservability: kind {kind!r}: expected one of {list(KINDS)}")
        name, variant = endpoint_name, VARIANT_NAME
        by_variant = {"EndpointName": name, "VariantName": variant}

        def metric(
            metric_name: str, statistic: str = "Sum", namespace: str = INVOCATION_NAMESPACE, **dims: str
        ) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=metric_name,
                dimensions_map=dims or by_variant,
                statistic=statistic,
                period=PERIOD,
            )

        # Asynchronous endpoints publish no Invocations, InvocationsPerInstance or
        # OverheadLatency: they count InvocationsProcessed and time the queue (TimeInBacklog).
        is_async = kind == "async"
        invocations = metric("InvocationsProcessed" if is_async else "Invocations")
        errors_5xx = metric("Invocation5XXErrors")
        errors_4xx = metric("Invocation4XXErrors")
        error_rate = cloudwatch.MathExpression(
            expression="IF(invocations > 0, 100 * errors / invocations, 0)",
            using_metrics={"invocations": invocations, "errors": errors_5xx},
            label="5xx rate (%)",
            period=PERIOD,
        )
        latency = {p: metric("ModelLatency", p) for p in ("p50", "p99")}
        overhead_name = "TimeInBacklog" if is_async else "OverheadLatency"
        overhead = {p: metric(overhead_name, p) for p in ("p50", "p99")}
        model_errors = metric("InvocationFailures" if is_async else "InvocationModelErrors")

        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(short: str, description: str, **kwargs: Any) -> cloudwatch.Alarm:
            created = cloudwatch.Alarm(
                self,
                short.title().replace("-", ""),
                alarm_name=f"{name}-{short}",
                alarm_description=description,
                **kwargs,
            )
            created.add_alarm_action(actions.SnsAction(topic))
            created.add_ok_action(actions.SnsAction(topic))
            self.alarms[short] = created
            return created

        alarm(
            "5xx-rate",
            f"5xx responses above {thresholds.error_rate_percent}% of invocations for 3 of 5 minutes; "
            "rolls back a rollout.",
            metric=error_rate,
            threshold=thresholds.error_rate_percent,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm(
            "p99-latency",
            f"Model latency p99 above {thresholds.p99_latency_ms} ms for 3 of 5 minutes; "
            "rolls back a rollout.",
            metric=latency["p99"],
            threshold=thresholds.p99_latency_ms * 1000,  # ModelLatency is in microseconds
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm(
            "model-errors",
            "The model container failed requests on 3 of 5 minutes.",
            metric=model_errors,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if thresholds.no_invocations_minutes is not None:
            window = thresholds.no_invocations_minutes
            alarm(
                "no-invocations",
                f"No request for {window} minutes where traffic is expected.",
                metric=invocations.with_(period=Duration.minutes(window)),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
        self.rollback_alarms = [self.alarms["5xx-rate"], self.alarms["p99-latency"]]

        def graph(title: str, *metrics: cloudwatch.IMetric, unit: str = "") -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title,
                left=list(metrics),
                width=8,
                height=6,
                left_y_axis=cloudwatch.YAxisProps(label=unit, show_units=False) if unit else None,
            )

        widgets: list[cloudwatch.IWidget] = [
            graph("Requests", invocations.with_(label="processed" if is_async else "invocations")),
            graph(
                "Errors",
                errors_4xx.with_(label="4xx"),
                errors_5xx.with_(label="5xx"),
                model_errors.with_(label="model errors"),
                error_rate,
            ),
            graph(
                "Model and overhead latency",
                *(m.with_(label=f"model {p}") for p, m in latency.items()),
                *(
                    m.with_(label=f"{'time in queue' if is_async else 'overhead'} {p}")
                    for p, m in overhead.items()
                ),
                unit="microseconds" if not is_async else "",
            ),
        ]
        if kind == "serverless":
            widgets.append(
                graph("Cold starts", metric("ModelSetupTime", "p99").with_(label="model setup p99"))
            )
        else:
            instance = {"namespace": INSTANCE_NAMESPACE}
            widgets += [
                graph(
                    "CPU, memory, disk (%)",
                    metric("CPUUtilization", "Average", **instance, **by_variant).with_(
                        label="CPU (100% per core)"
                    ),
                    metric("MemoryUtilization", "Average", **instance, **by_variant).with_(label="memory"),
                    metric("DiskUtilization", "Average", **instance, **by_variant).with_(label="disk"),
                ),
                graph(
                    "Instances",
                    # One CPU sample per instance per minute (AWS's way to count instances).
                    metric("CPUUtilization", "SampleCount", **instance, **by_variant).with_(
                        label="instances (CPU samples per minute)"
                    ),
                ),
            ]
        if kind == "async":
            by_endpoint = {"EndpointName": name}
            widgets.append(
                graph(
                    "Backlog",
                    metric("ApproximateBacklogSize", "Average", **by_endpoint).with_(label="backlog"),
                    metric("ApproximateBacklogSizePerInstance", "Average", **by_endpoint).with_(
                        label="per instance"
                    ),
                    metric("HasBacklogWithoutCapacity", "Maximum", **by_endpoint).with_(
                        label="waiting with no instance"
                    ),
                )
            )
        widgets.append(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=8, height=6)
        )
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=name,
            widgets=[widgets[i : i + 3] for i in range(0, len(widgets), 3)],
        )
