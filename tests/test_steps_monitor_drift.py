"""Drift statistics of the monitor against references computed directly on the raw data:
scipy's ks_2samp, a direct PSI over the baseline's deciles, exact quantiles for the sketch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline_steps.common.baseline import _numerical, _string
from pipeline_steps.monitor.drift import KS_ALPHA, CategoricalDrift, NumericDrift, psi
from pipeline_steps.monitor.sketch import QuantileSketch

PSI_THRESHOLD = 0.2
KS_THRESHOLD = 0.1


def numeric_drift(reference: np.ndarray, current: np.ndarray, chunk: int = 7_000) -> dict:
    """The monitor's verdict with the baseline built exactly as preprocessing builds it."""
    stats_block = _numerical(reference, 0)
    from pipeline_steps.monitor.sketch import BaselineDistribution

    acc = NumericDrift("x", BaselineDistribution.from_statistics(stats_block), 0)
    for start in range(0, len(current), chunk):  # streamed in chunks, as capture files come
        acc.add(current[start : start + chunk])
    return acc.result(PSI_THRESHOLD, KS_THRESHOLD)


def direct_psi(reference: np.ndarray, current: np.ndarray) -> float:
    edges = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
    ref = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=len(edges) + 1)
    cur = np.bincount(np.searchsorted(edges, current, side="left"), minlength=len(edges) + 1)
    ref_share, cur_share = ref / ref.sum(), cur / cur.sum()
    e, a = np.maximum(ref_share, 1e-4), np.maximum(cur_share, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


CASES = {
    "same distribution": lambda r: r.normal(0, 1, 30_000),
    "small shift": lambda r: r.normal(0.06, 1, 30_000),
    "mean shift": lambda r: r.normal(0.5, 1, 30_000),
    "wider": lambda r: r.normal(0, 1.6, 30_000),
    "skewed counts": lambda r: np.floor(r.gamma(2.0, 3.0, 30_000) * 1.3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_verdicts_agree_with_scipy_and_direct_psi(case):
    rng = np.random.default_rng(5)
    reference = np.floor(rng.gamma(2.0, 3.0, 40_000)) if case == "skewed counts" else rng.normal(0, 1, 40_000)
    current = CASES[case](np.random.default_rng(6))
    result = numeric_drift(reference, current)
    scipy_result = stats.ks_2samp(reference, current)
    assert result["ks_statistic"] == pytest.approx(scipy_result.statistic, abs=0.005)
    scipy_verdict = scipy_result.pvalue < KS_ALPHA and scipy_result.statistic > KS_THRESHOLD
    direct = direct_psi(reference, current)
    assert result["psi"] == pytest.approx(direct, abs=0.01 + 0.05 * direct)
    assert result["drifted"] == (direct >= PSI_THRESHOLD or scipy_verdict), (result, direct, scipy_result)
    if case == "same distribution":
        assert not result["drifted"] and result["ks_pvalue"] > KS_ALPHA
    if case in ("mean shift", "wider"):
        assert result["drifted"]
    if case == "small shift":  # significant with 30k rows, yet too small to act on
        assert scipy_result.pvalue < 0.05 and not result["drifted"]


def test_ks_pvalue_matches_scipy_asymptotic():
    rng = np.random.default_rng(1)
    reference, current = rng.normal(0, 1, 20_000), rng.normal(0.02, 1, 20_000)
    result = numeric_drift(reference, current)
    scipy_result = stats.ks_2samp(reference, current, method="asymp")
    assert result["ks_pvalue"] == pytest.approx(scipy_result.pvalue, rel=0.5, abs=0.01)


def test_missing_values_are_a_bin_of_their_own():
    rng = np.random.default_rng(2)
    reference = rng.normal(0, 1, 20_000)
    current = rng.normal(0, 1, 20_000)
    current[:6_000] = np.nan  # 30 % missing, the present values unchanged
    result = numeric_drift(reference, current)
    assert result["current"]["missing"] == 6_000
    assert result["psi"] > PSI_THRESHOLD and result["drifted"]


@pytest.mark.parametrize("shape", ["normal", "heavy tail", "discrete"])
def test_quantile_sketch_rank_error_is_below_one_percent(shape):
    rng = np.random.default_rng(3)
    n = 400_000
    values = {
        "normal": rng.normal(size=n),
        "heavy tail": rng.pareto(1.5, size=n),
        "discrete": rng.integers(0, 40, size=n).astype(float),
    }[shape]
    sketch = QuantileSketch(k=512)  # small k: many compressions, the worst case for the bound
    for start in range(0, n, 10_000):
        sketch.add(values[start : start + 10_000])
    qs = np.linspace(0.01, 0.99, 99)
    estimate = sketch.quantiles(qs)
    ordered = np.sort(values)
    # rank error: where the estimate falls in the exact order, against the rank asked for
    low = np.searchsorted(ordered, estimate, side="left") / n
    high = np.searchsorted(ordered, estimate, side="right") / n
    error = np.maximum(0, np.maximum(low - qs, qs - high))
    assert error.max() < 0.01, error.max()
    assert sketch.max_rank_error / n < 0.01


def test_categorical_drift_psi_linf_and_js():
    base = pd.Series(["a"] * 500 + ["b"] * 300 + ["c"] * 200)
    stats_block = _string(base)
    counts = {b["value"]: b["count"] for b in stats_block["distribution"]["categorical"]["buckets"]}
    same = CategoricalDrift("cat", counts, 0, ("a", "b", "c"))
    same.add(pd.Series(["a"] * 250 + ["b"] * 150 + ["c"] * 100))
    assert same.result(0.2, 0.1)["drifted"] is False
    shifted = CategoricalDrift("cat", counts, 0, ("a", "b", "c"))
    shifted.add(pd.Series(["a"] * 200 + ["b"] * 300 + ["c"] * 300 + ["zzz"] * 200 + [None] * 50))
    result = shifted.result(0.2, 0.1)
    base_share = np.array([0.5, 0.3, 0.2, 0.0, 0.0])
    cur_share = np.array([200, 300, 300, 200, 50]) / 1050
    assert result["linf"] == pytest.approx(np.max(np.abs(base_share - cur_share)))
    assert result["psi"] == pytest.approx(psi(base_share, cur_share))
    assert result["jensen_shannon"] == pytest.approx(
        float(
            np.sqrt(
                stats.entropy(base_share, (base_share + cur_share) / 2, base=2) / 2
                + stats.entropy(cur_share, (base_share + cur_share) / 2, base=2) / 2
            )
        )
    )
    assert result["drifted"] and shifted.out_of_domain == 200
