"""Mean absolute SHAP contribution per feature, from XGBoost's own TreeSHAP
(`pred_contribs=True`): evaluation stores it as the baseline, the monitor compares against it."""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE_ROWS = 20_000
SCORE_QUANTILES = 2048


def mean_abs_contributions(booster: Any, X: np.ndarray, names: list[str]) -> dict[str, float]:
    import xgboost as xgb

    if not len(X):
        return {}
    matrix = xgb.DMatrix(X, missing=np.nan, feature_names=names)
    contributions = booster.predict(matrix, pred_contribs=True)
    means = np.abs(contributions[:, : len(names)]).mean(axis=0)  # the last column is the bias
    return {name: float(v) for name, v in zip(names, means, strict=True)}


def monitoring_baseline(booster: Any, X: np.ndarray, scores: np.ndarray, names: list[str]) -> dict[str, Any]:
    """What the monitor compares the live window with: the score distribution (evenly spaced
    quantiles, as statistics.json stores features) and the attribution profile, on the test
    split (a uniform sample of at most SAMPLE_ROWS rows for the attributions)."""
    rng = np.random.default_rng(0)
    rows = rng.choice(len(X), size=min(len(X), SAMPLE_ROWS), replace=False) if len(X) else np.zeros(0, int)
    return {
        "score_count": int(len(scores)),
        "score_quantiles": [float(v) for v in np.quantile(scores, np.linspace(0, 1, SCORE_QUANTILES))]
        if len(scores)
        else [],
        "mean_abs_contributions": mean_abs_contributions(booster, X[np.sort(rows)], names),
        "attribution_rows": int(len(rows)),
    }
