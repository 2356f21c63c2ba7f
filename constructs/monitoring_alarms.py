"""CloudWatch alarms on the monitor's metrics, notifying an SNS topic, and a dashboard with
drift and quality over time next to the endpoint's own health."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns

from constructs import Construct

VARIANT = "AllTraffic"


class MonitoringAlarms(Construct):
    """Alarms: drift share above `drift_share`, estimated and realized AUC below `auc_floor`,
    any data-quality violation, no captured records in a window.  Missing data (no run yet, no
    labels yet) is not breaching: an alarm speaks only about a window that was measured.

    Exposes `alarms` by name (drift_share, estimated_quality, realized_quality, data_quality,
    no_traffic), `retraining_alarms` (the ones that trigger retraining) and `dashboard`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        namespace: str,
        period_hours: int,
        drift_share: float,
        auc_floor: float,
        topic: sns.ITopic,
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, id)
        period = Duration.hours(min(period_hours, 24))  # CloudWatch alarms look at most one day back

        def metric(name: str, label: str | None = None) -> cw.Metric:
            return cw.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map={"EndpointName": endpoint_name},
                period=period,
                statistic="Average",
                **({"label": label} if label else {}),
            )

        def alarm(key: str, m: cw.Metric, threshold: float, op: cw.ComparisonOperator, what: str) -> cw.Alarm:
            a = cw.Alarm(
                self,
                key.title().replace("_", ""),
                alarm_name=f"{endpoint_name}-{key.replace('_', '-')}",
                alarm_description=f"{endpoint_name}: {what}",
                metric=m,
                threshold=threshold,
                comparison_operator=op,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            a.add_alarm_action(cw_actions.SnsAction(topic))
            a.add_ok_action(cw_actions.SnsAction(topic))
            return a

        self.metrics = {
            "drift_share": metric("DriftShare", "share of drifted features"),
            "estimated_auc": metric("EstimatedAUC", "estimated AUC (before labels)"),
            "realized_auc": metric("RealizedAUC", "realized AUC (labels)"),
            "violations": metric("DataQualityViolations", "data-quality violations"),
            "records": metric("Records", "captured records"),
        }
        # the alarms watch the plain metrics (a label would turn them into metric math)
        plain = {key: metric(m.metric_name) for key, m in self.metrics.items()}
        gt, lt = cw.ComparisonOperator.GREATER_THAN_THRESHOLD, cw.ComparisonOperator.LESS_THAN_THRESHOLD
        self.alarms = {
            "drift_share": alarm(
                "drift_share",
                plain["drift_share"],
                drift_share,
                gt,
                f"more than {drift_share:.0%} of features drifted",
            ),
            "estimated_quality": alarm(
                "estimated_quality",
                plain["estimated_auc"],
                auc_floor,
                lt,
                f"estimated AUC below {auc_floor}",
            ),
            "realized_quality": alarm(
                "realized_quality",
                plain["realized_auc"],
                auc_floor,
                lt,
                f"realized AUC below {auc_floor}",
            ),
            "data_quality": alarm(
                "data_quality",
                plain["violations"],
                0,
                gt,
                "data-quality violations against the baseline",
            ),
            "no_traffic": alarm(
                "no_traffic",
                plain["records"],
                1,
                lt,
                "a monitoring window with no usable captured records",
            ),
        }
        self.retraining_alarms = [
            self.alarms[k] for k in ("drift_share", "estimated_quality", "realized_quality")
        ]

        def endpoint_metric(name: str, statistic: str) -> cw.Metric:
            return cw.Metric(
                namespace="AWS/SageMaker",
                metric_name=name,
                dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT},
                period=Duration.minutes(5),
                statistic=statistic,
            )

        m = self.metrics
        quality = [
            metric("EstimatedPrecision", "estimated precision"),
            metric("RealizedPrecision", "realized precision"),
            metric("EstimatedRecall", "estimated recall"),
            metric("RealizedRecall", "realized recall"),
        ]
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.days(14),
            widgets=[
                [
                    cw.AlarmStatusWidget(
                        title="Monitoring alarms", alarms=list(self.alarms.values()), width=24, height=3
                    )
                ],
                [
                    cw.GraphWidget(
                        title="Drift: share of drifted features",
                        left=[m["drift_share"]],
                        left_annotations=[cw.HorizontalAnnotation(value=drift_share, label="alarm")],
                        left_y_axis=cw.YAxisProps(min=0, max=1),
                        width=8,
                    ),
                    cw.GraphWidget(
                        title="Prediction and attribution drift",
                        left=[
                            metric("PredictionPSI", "prediction PSI"),
                            metric("AttributionDrift", "attribution distance"),
                        ],
                        width=8,
                    ),
                    cw.GraphWidget(
                        title="Data quality",
                        left=[m["violations"], metric("RejectedCaptureLines", "rejected capture lines")],
                        width=8,
                    ),
                ],
                [
                    cw.GraphWidget(
                        title="AUC: estimated (CBPE) vs realized (labels)",
                        left=[m["estimated_auc"], m["realized_auc"]],
                        left_annotations=[cw.HorizontalAnnotation(value=auc_floor, label="floor")],
                        left_y_axis=cw.YAxisProps(min=0, max=1),
                        width=8,
                    ),
                    cw.GraphWidget(
                        title="Precision and recall",
                        left=quality,
                        left_y_axis=cw.YAxisProps(min=0, max=1),
                        width=8,
                    ),
                    cw.GraphWidget(
                        title="Records and labels",
                        left=[m["records"], metric("LabeledRecords", "labeled records")],
                        right=[metric("FourFifthsRatio", "four-fifths ratio (worst segment)")],
                        width=8,
                    ),
                ],
                [
                    cw.GraphWidget(
                        title="Endpoint: invocations and errors",
                        left=[endpoint_metric("Invocations", "Sum")],
                        right=[
                            endpoint_metric("Invocation4XXErrors", "Sum"),
                            endpoint_metric("Invocation5XXErrors", "Sum"),
                        ],
                        width=12,
                    ),
                    cw.GraphWidget(
                        title="Endpoint: model latency (microseconds)",
                        left=[endpoint_metric("ModelLatency", "p50"), endpoint_metric("ModelLatency", "p99")],
                        width=12,
                    ),
                ],
            ],
        )
