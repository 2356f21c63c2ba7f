"""Binary classification metrics, the reliability curve, and the Model Registry format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import metrics as skm

RELIABILITY_BINS = 10
# Model Monitor's convention: standard deviations from 5 random 80% samples, given only
# when there are at least 200 rows (otherwise the string "NaN").
STD_MIN_ROWS = 200
STD_SAMPLES = 5
STD_FRACTION = 0.8
MAX_CURVE_POINTS = 201
_EPS = 1e-15


def _counts(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    pred = p >= threshold
    pos = y == 1
    tp = int(np.sum(pred & pos))
    fp = int(np.sum(pred & ~pos))
    fn = int(np.sum(~pred & pos))
    tn = int(np.sum(~pred & ~pos))
    return tn, fp, fn, tp


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def _fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    denom = b2 * precision + recall
    return float((1 + b2) * precision * recall / denom) if denom else 0.0


def reliability_curve(y: np.ndarray, p: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict[str, Any]]:
    """Equal-width bins over [0, 1]: mean predicted, observed positive rate, row count.

    Bin edges as in sklearn's `calibration_curve(strategy="uniform")`: a value on an inner
    edge falls in the lower bin.  Empty bins are kept, with null means.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], p)
    out = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        out.append(
            {
                "bin_lower": round(float(edges[b]), 10),
                "bin_upper": round(float(edges[b + 1]), 10),
                "mean_predicted": float(p[mask].mean()) if count else None,
                "observed_rate": float(y[mask].mean()) if count else None,
                "count": count,
            }
        )
    return out


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """The evaluation.json metrics of one scorer (no latency)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    tn, fp, fn, tp = _counts(y, p, threshold)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "auc": float(skm.roc_auc_score(y, p)),
        "precision": precision,
        "recall": recall,
        "f1": _fbeta(precision, recall, 1.0),
        "accuracy": _ratio(tp + tn, len(y)),
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(skm.log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
        "threshold": float(threshold),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "reliability": reliability_curve(y, p),
    }


def _downsample(*arrays: np.ndarray, limit: int = MAX_CURVE_POINTS) -> list[list[float]]:
    n = len(arrays[0])
    if n > limit:
        keep = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
        arrays = tuple(a[keep] for a in arrays)
    return [[float(v) for v in a] for a in arrays]


def registry_metrics(y: np.ndarray, p: np.ndarray, threshold: float, *, seed: int = 0) -> dict[str, Any]:
    """`{"binary_classification_metrics": {...}}` in the Model Registry / Model Monitor
    model-quality format: scalar metrics as {"value", "standard_deviation"}, the confusion
    matrix keyed actual label -> predicted label, ROC and precision-recall curves.

    The "best constant classifier" is Model Monitor's: always predict the positive class.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)

    def scalars(yy: np.ndarray, pp: np.ndarray) -> dict[str, float]:
        tn, fp, fn, tp = _counts(yy, pp, threshold)
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        prevalence = _ratio(tp + fn, len(yy))
        return {
            "recall": recall,
            "precision": precision,
            "accuracy": _ratio(tp + tn, len(yy)),
            "recall_best_constant_classifier": 1.0,
            "precision_best_constant_classifier": prevalence,
            "accuracy_best_constant_classifier": prevalence,
            "true_positive_rate": recall,
            "true_negative_rate": _ratio(tn, tn + fp),
            "false_positive_rate": _ratio(fp, fp + tn),
            "false_negative_rate": _ratio(fn, fn + tp),
            "auc": float(skm.roc_auc_score(yy, pp)) if 0 < tp + fn < len(yy) else float("nan"),
            "f0_5": _fbeta(precision, recall, 0.5),
            "f1": _fbeta(precision, recall, 1.0),
            "f2": _fbeta(precision, recall, 2.0),
        }

    values = scalars(y, p)
    stds: dict[str, Any] = dict.fromkeys(values, "NaN")
    if len(y) >= STD_MIN_ROWS:
        rng = np.random.default_rng(seed)
        size = int(len(y) * STD_FRACTION)
        samples = []
        for _ in range(STD_SAMPLES):
            idx = rng.choice(len(y), size=size, replace=False)
            samples.append(scalars(y[idx], p[idx]))
        for k in values:
            column = np.array([s[k] for s in samples])
            if np.all(np.isfinite(column)):
                stds[k] = float(np.std(column))
    tn, fp, fn, tp = _counts(y, p, threshold)
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=True)
    precisions, recalls, _ = skm.precision_recall_curve(y, p, drop_intermediate=True)
    fpr_l, tpr_l = _downsample(fpr, tpr)
    prec_l, rec_l = _downsample(precisions, recalls)
    out: dict[str, Any] = {
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
    }
    for k, v in values.items():
        out[k] = {"value": v, "standard_deviation": stds[k]}
    out["receiver_operating_characteristic_curve"] = {
        "false_positive_rates": fpr_l,
        "true_positive_rates": tpr_l,
    }
    out["precision_recall_curve"] = {"precisions": prec_l, "recalls": rec_l}
    return {"binary_classification_metrics": out}


def time_batches(predict: Callable[[], Any], rows: int, repeats: int = 5) -> float:
    """Median over `repeats` timed batch predictions, in milliseconds per row."""
    import time

    predict()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0 / max(rows, 1))


def time_single_rows(predict_one: Callable[[Any], Any], singles: list[Any]) -> dict[str, float]:
    """p50/p95 in milliseconds of one-row predictions."""
    import time

    if not singles:
        return {"p50": 0.0, "p95": 0.0, "samples": 0}
    predict_one(singles[0])
    times = []
    for one in singles:
        t0 = time.perf_counter()
        predict_one(one)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {
        "p50": float(np.percentile(times, 50)),
        "p95": float(np.percentile(times, 95)),
        "samples": len(times),
    }
