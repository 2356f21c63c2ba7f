"""The monitoring baseline from the training split, in SageMaker Model Monitor's format.

`statistics.json` (version 0.0: dataset.item_count; per feature numerical_statistics with a
KLL distribution, or string_statistics with categorical buckets) and `constraints.json`
(inferred_type, completeness, is_non_negative, string domains, monitoring_config).  Model
Monitor reads them where an account has it; the project's own monitor reads them elsewhere.
Columns: the spec's model features, so the baseline watches exactly what the model sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import FeatureSpec

KLL_C = 0.64
KLL_K = 2048
BUCKETS = 10  # Model Monitor materialises distributions in 10 buckets


def inferred_type(spec: FeatureSpec, name: str) -> str:
    kind = spec.feature_type(name)
    if kind in ("category", "string", "date"):
        return "String"
    return "Integral" if kind in ("integer", "boolean") else "Fractional"


def _numbers(values: pd.Series) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return v[np.isfinite(v)]


def _numerical(v: np.ndarray, missing: int) -> dict[str, Any]:
    common = {"num_present": int(len(v)), "num_missing": int(missing)}
    if not len(v):
        return {
            "common": common,
            "mean": 0.0,
            "sum": 0.0,
            "std_dev": 0.0,
            "min": 0.0,
            "max": 0.0,
            "distribution": {
                "kll": {
                    "buckets": [],
                    "sketch": {"parameters": {"c": KLL_C, "k": float(KLL_K)}, "data": [[]]},
                }
            },
        }
    lo, hi = float(v.min()), float(v.max())
    edges = np.linspace(lo, hi, BUCKETS + 1) if hi > lo else np.array([lo, hi])
    counts = np.histogram(v, bins=edges)[0] if hi > lo else np.array([len(v)])
    buckets = [
        {"lower_bound": float(a), "upper_bound": float(b), "count": float(c)}
        for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    # A one-level sketch: up to k evenly spaced quantiles of the sorted values.
    sample = np.sort(v) if len(v) <= KLL_K else np.quantile(v, np.linspace(0, 1, KLL_K))
    return {
        "common": common,
        "mean": float(v.mean()),
        "sum": float(v.sum()),
        "std_dev": float(v.std()),
        "min": lo,
        "max": hi,
        "distribution": {
            "kll": {
                "buckets": buckets,
                "sketch": {
                    "parameters": {"c": KLL_C, "k": float(KLL_K)},
                    "data": [[float(x) for x in sample]],
                },
            }
        },
    }


def _string(values: pd.Series) -> dict[str, Any]:
    s = values.astype("string")
    counts = s.dropna().value_counts()
    return {
        "common": {"num_present": int(s.notna().sum()), "num_missing": int(s.isna().sum())},
        "distinct_count": float(len(counts)),
        "distribution": {
            "categorical": {
                "buckets": [{"value": str(k), "count": float(c)} for k, c in sorted(counts.items())]
            }
        },
    }


def statistics(train: pd.DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    features = []
    for name in spec.model_features:
        kind = inferred_type(spec, name)
        column = train[name]
        entry: dict[str, Any] = {"name": name, "inferred_type": kind}
        if kind == "String":
            entry["string_statistics"] = _string(column)
        else:
            v = _numbers(column)
            entry["numerical_statistics"] = _numerical(v, len(column) - len(v))
        features.append(entry)
    return {"version": 0.0, "dataset": {"item_count": int(len(train))}, "features": features}


def statistics_from_file(path: Path, spec: FeatureSpec) -> dict[str, Any]:
    """The statistics of a written training split (only the model's features are read)."""
    return statistics(pd.read_parquet(path, columns=spec.model_features), spec)


def constraints(stats: dict[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    items = max(int(stats["dataset"]["item_count"]), 1)
    features = []
    for f in stats["features"]:
        block = f.get("numerical_statistics") or f.get("string_statistics")
        entry: dict[str, Any] = {
            "name": f["name"],
            "inferred_type": f["inferred_type"],
            "completeness": block["common"]["num_present"] / items,
        }
        if "numerical_statistics" in f:
            entry["num_constraints"] = {"is_non_negative": bool(f["numerical_statistics"]["min"] >= 0)}
        else:
            entry["string_constraints"] = {"domains": list(spec.column(f["name"]).categories)}
        features.append(entry)
    return {
        "version": 0.0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": 0.1,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": 0.1,
                "categorical_drift_method": "LInfinity",
            },
        },
    }
