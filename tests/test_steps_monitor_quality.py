"""Model quality (realized and CBPE-estimated), bias per segment, attribution comparison."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline_steps.monitor import bias, quality
from pipeline_steps.monitor.attribution import Reservoir, compare


def calibrated_world(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Inputs move by `shift` (covariate shift); P(y | x) stays the same logistic curve, so the
    scores are calibrated before and after the shift."""
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-(1.8 * x - 2.2)))
    return p, (rng.random(n) < p).astype(float)


def test_realized_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    p, y = calibrated_world(rng, 5_000, 0.0)
    r = quality.realized(y, p, 0.3)
    assert r["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert r["precision"] == pytest.approx(skm.precision_score(y, p >= 0.3))
    assert r["recall"] == pytest.approx(skm.recall_score(y, p >= 0.3))
    assert r["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert quality.realized(y[:10], p[:10], 0.3) is None  # too few labels to say anything


@pytest.mark.parametrize("shift", [-0.8, 0.0, 0.7, 1.5])
def test_estimate_tracks_realized_metric_under_covariate_shift(shift):
    rng = np.random.default_rng(42)
    p, y = calibrated_world(rng, 40_000, shift)
    est = quality.estimated(p, 0.3)
    real = quality.realized(y, p, 0.3)
    for key in ("auc", "precision", "recall"):
        assert est[key] == pytest.approx(real[key], abs=0.02), key


def test_estimate_follows_the_realized_change_across_shifts():
    """The point of the estimate: it moves the way the realized metric moves, before labels."""
    rng = np.random.default_rng(7)
    est, real = [], []
    for shift in (-1.5, -0.75, 0.0, 0.75, 1.5):
        p, y = calibrated_world(rng, 30_000, shift)
        est.append(quality.estimated(p, 0.3)["precision"])
        real.append(quality.realized(y, p, 0.3)["precision"])
    assert np.corrcoef(est, real)[0, 1] > 0.98
    assert max(abs(a - b) for a, b in zip(est, real, strict=True)) < 0.02


def test_estimate_is_wrong_under_concept_drift_which_is_why_labels_win():
    rng = np.random.default_rng(3)
    p, _ = calibrated_world(rng, 30_000, 0.0)
    y = (rng.random(len(p)) < np.clip(p * 1.8, 0, 1)).astype(float)  # the world got riskier
    est, real = quality.estimated(p, 0.3), quality.realized(y, p, 0.3)
    assert real["precision"] - est["precision"] > 0.1
    assert "calibrated" in est["assumptions"]


def test_over_time_buckets():
    rng = np.random.default_rng(1)
    p, y = calibrated_world(rng, 4_800, 0.0)
    hours = np.repeat(np.arange(48), 100) + 480_000
    y[2_400:] = np.nan  # labels only for the first day
    points = quality.over_time(hours, p, y, 0.3, buckets=24)
    assert len(points) == 24 and all(pt["hours"] == 2 for pt in points)
    assert all(pt["realized_auc"] is not None for pt in points[:12])
    assert all(pt["realized_auc"] is None and pt["estimated_auc"] is not None for pt in points[12:])


def test_bias_selection_rates_gaps_and_four_fifths():
    rng = np.random.default_rng(0)
    n = 3_000
    segment = np.array(["north"] * n + ["south"] * n, dtype=object)
    p = np.concatenate([rng.uniform(0, 0.5, n), rng.uniform(0.2, 0.9, n)])
    y = (rng.random(2 * n) < p).astype(float)
    y[::3] = np.nan
    report = bias.segment_report(segment, p, y, threshold=0.4)
    north, south = report["segments"]
    assert north["approval_rate"] == pytest.approx(np.mean(p[:n] < 0.4))
    assert south["approval_rate"] == pytest.approx(np.mean(p[n:] < 0.4))
    assert report["four_fifths_ratio"] == pytest.approx(south["approval_rate"] / north["approval_rate"])
    assert report["adverse_impact"]
    gap = report["largest_gaps"]["approval_rate"]
    assert gap["lowest"] == "south" and gap["highest"] == "north"
    labeled = ~np.isnan(y[:n])
    assert north["auc"] == pytest.approx(skm.roc_auc_score(y[:n][labeled], p[:n][labeled]))


def test_reservoir_is_uniform_and_attribution_distance():
    r = Reservoir(1_000, 1, seed=0)
    for start in range(0, 100_000, 7_000):
        r.add(np.arange(start, min(start + 7_000, 100_000), dtype=np.float32)[:, None])
    sample = r.sample()[:, 0]
    assert len(sample) == 1_000 and len(np.unique(sample)) == 1_000
    assert 40_000 < sample.mean() < 60_000  # not just the first rows
    same = compare({"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 2.0}, 0.1)
    assert same["distance"] == pytest.approx(0.0) and not same["drifted"]
    moved = compare({"a": 0.0, "b": 1.0}, {"a": 1.0, "b": 0.0}, 0.1)
    assert moved["distance"] == pytest.approx(1.0) and moved["drifted"]
