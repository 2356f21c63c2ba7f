"""The monitor's metrics in CloudWatch's embedded metric format (one JSON object per line).

Locally this file is the metrics; on AWS the metrics publisher reads it from the job's output
and calls PutMetricData with the same names, dimensions and units, so alarms and dashboards
see exactly what the report shows.
"""

from __future__ import annotations

import json
from typing import Any

NAMESPACE = "MLOps/ModelMonitoring"
# metric name -> (summary path, unit)
METRICS: dict[str, tuple[str, str]] = {
    "Records": ("records", "Count"),
    "RejectedCaptureLines": ("capture.rejected_lines", "Count"),
    "DataQualityViolations": ("data_quality.violations", "Count"),
    "DriftShare": ("drift.share", "None"),
    "DriftedFeatures": ("drift.drifted_features", "Count"),
    "PredictionPSI": ("drift.prediction.psi", "None"),
    "EstimatedAUC": ("quality.estimated.auc", "None"),
    "EstimatedPrecision": ("quality.estimated.precision", "None"),
    "EstimatedRecall": ("quality.estimated.recall", "None"),
    "RealizedAUC": ("quality.realized.auc", "None"),
    "RealizedPrecision": ("quality.realized.precision", "None"),
    "RealizedRecall": ("quality.realized.recall", "None"),
    "LabeledRecords": ("quality.labeled", "Count"),
    "RejectedLabels": ("labels.rejected_lines", "Count"),
    "UnknownLabelIds": ("labels.unknown_inference_ids", "Count"),
    "AttributionDrift": ("attribution.distance", "None"),
    "FourFifthsRatio": ("bias.worst_four_fifths_ratio", "None"),
}


def lookup(summary: dict[str, Any], path: str) -> Any:
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def emf_lines(summary: dict[str, Any], endpoint: str, timestamp_ms: int) -> list[str]:
    """One EMF document with every metric that has a value (absent ones are left out, so an
    alarm on realized quality sees no data, not a zero, before labels arrive)."""
    values = {
        name: float(v)
        for name, (path, _unit) in METRICS.items()
        if isinstance(v := lookup(summary, path), (int, float)) and v == v  # NaN != NaN
    }
    doc = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["EndpointName"]],
                    "Metrics": [{"Name": n, "Unit": METRICS[n][1]} for n in values],
                }
            ],
        },
        "EndpointName": endpoint,
        **values,
    }
    return [json.dumps(doc, sort_keys=True)]
