"""Model quality: realized once labels exist, estimated before (confidence-based performance
estimation, the idea NannyML calls CBPE).

The estimate assumes the model's probabilities stay calibrated on the current data: under
covariate shift (inputs move, P(label | inputs) does not) a record scored p is a positive
with probability p, so the expected confusion matrix at the decision threshold is
TP = sum of p over flagged records, FP = sum of (1 - p) over flagged, FN = sum of p over the
rest; precision, recall and the ROC curve (hence AUC) follow.  Under concept drift (the
relation itself changes) the estimate is wrong by exactly that change, which is why realized
figures replace it as labels arrive and the report shows both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CALIBRATION_BINS = 10
MIN_LABELED = 30  # fewer labels (or one class only) give no realized figures


def _auc_from_weights(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve where record i counts positive[i] positives and negative[i]
    negatives (0/1 for labels, p and 1 - p for the estimate); tied scores share credit."""
    order = np.argsort(-scores, kind="stable")
    s, pos, neg = scores[order], positive[order], negative[order]
    group = np.concatenate([[0], np.cumsum(np.diff(s) != 0)]) if len(s) else np.zeros(0, int)
    gp, gn = np.bincount(group, weights=pos), np.bincount(group, weights=neg)
    area = float(np.sum(gn * (np.cumsum(gp) - gp / 2)))
    total = float(pos.sum()) * float(neg.sum())
    return area / total if total > 0 else float("nan")


def auc(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """Labels: positive = y, negative = 1 - y (equals sklearn's roc_auc_score); the estimate:
    positive = p, negative = 1 - p."""
    return _auc_from_weights(
        np.asarray(scores, float), np.asarray(positive, float), np.asarray(negative, float)
    )


def calibration(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, CALIBRATION_BINS - 1)
    bins, ece = [], 0.0
    for b in range(CALIBRATION_BINS):
        mask = which == b
        n = int(mask.sum())
        if n:
            gap = abs(float(p[mask].mean()) - float(y[mask].mean()))
            ece += n / len(p) * gap
            bins.append(
                {
                    "bin_lower": float(edges[b]),
                    "bin_upper": float(edges[b + 1]),
                    "mean_predicted": float(p[mask].mean()),
                    "observed_rate": float(y[mask].mean()),
                    "count": n,
                }
            )
    return {"expected_calibration_error": ece, "reliability": bins}


def realized(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any] | None:
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) < MIN_LABELED or y.min() == y.max():
        return None
    flagged = p >= threshold
    tp = float(y[flagged].sum())
    fp = float(flagged.sum()) - tp
    fn = float(y[~flagged].sum())
    return {
        "labeled": int(len(y)),
        "positive_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
        "auc": auc(p, y, 1 - y),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "brier": float(np.mean((p - y) ** 2)),
        **calibration(y, p),
    }


def estimated(p: np.ndarray, threshold: float) -> dict[str, Any] | None:
    p = np.asarray(p, float)
    if not len(p):
        return None
    flagged = p >= threshold
    tp = float(p[flagged].sum())
    fp = float((1 - p[flagged]).sum())
    fn = float(p[~flagged].sum())
    return {
        "records": int(len(p)),
        "expected_positive_rate": float(p.mean()),
        "auc": auc(p, p, 1 - p),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "assumptions": "probabilities stay calibrated on the current data (covariate shift only, no "
        "concept drift); labels replace the estimate as they arrive",
    }


def over_time(
    hours: np.ndarray, p: np.ndarray, y: np.ndarray, threshold: float, *, buckets: int = 24
) -> list[dict[str, Any]]:
    """Estimated and realized figures per time bucket (hours since the epoch; at most
    `buckets` equal spans over the window)."""
    if not len(hours):
        return []
    lo, hi = int(hours.min()), int(hours.max()) + 1
    width = max(1, -(-(hi - lo) // buckets))
    which = (hours - lo) // width
    out = []
    for b in np.unique(which):
        mask = which == b
        labeled = mask & ~np.isnan(y)
        est = estimated(p[mask], threshold) or {}
        real = realized(y[labeled], p[labeled], threshold) or {}
        out.append(
            {
                "start_hour": int(lo + b * width),
                "hours": int(width),
                "records": int(mask.sum()),
                "labeled": int(labeled.sum()),
                "estimated_auc": est.get("auc"),
                "estimated_precision": est.get("precision"),
                "estimated_recall": est.get("recall"),
                "realized_auc": real.get("auc"),
                "realized_precision": real.get("precision"),
                "realized_recall": real.get("recall"),
            }
        )
    return out


def against_evaluation(figures: dict[str, Any] | None, evaluation: dict[str, Any]) -> dict[str, Any]:
    """Differences to the serving version's evaluation-time figures (test split)."""
    model = evaluation.get("model", {})
    if not figures:
        return {}
    return {
        key: {"now": figures[key], "at_evaluation": model[key], "change": figures[key] - model[key]}
        for key in ("auc", "precision", "recall", "brier")
        if key in figures and isinstance(model.get(key), (int, float))
    }
