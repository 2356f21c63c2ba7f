"""Distribution drift, streamed: PSI and Kolmogorov-Smirnov for numbers, PSI, L-infinity and
Jensen-Shannon for categories, each against the baseline's distribution.

Numbers: the current window is summarised by a `QuantileSketch` (bounded memory) plus exact
counts in the PSI bins, whose edges are the baseline's deciles; missing values are a bin of
their own, so a jump in missing values is drift too.  KS compares the two empirical CDFs on
the union of their sample points and takes its p-value from the same asymptotic distribution
scipy's `ks_2samp` uses for large samples.  A feature drifts when PSI reaches its threshold,
or when KS is both significant and large (D above the constraints' comparison threshold, as
Model Monitor's baseline_drift_check does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

from pipeline_steps.monitor.sketch import BaselineDistribution, QuantileSketch

PSI_FLOOR = 1e-4  # a bin that is empty on one side counts as this share, so PSI stays finite
KS_ALPHA = 0.05
PSI_BINS = 10


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Two-sided asymptotic p-value of the two-sample KS statistic (as scipy's ks_2samp)."""
    if n == 0 or m == 0:
        return 1.0
    en = n * m / (n + m)
    if en > 10_000:  # kstwo is slow for large n and equals its limit there to ~1e-3
        return float(stats.kstwobign.sf(d * np.sqrt(en)))
    return float(stats.kstwo.sf(d, np.round(en)))


def decile_edges(baseline: BaselineDistribution) -> np.ndarray:
    return np.unique(baseline.quantiles(np.arange(1, PSI_BINS) / PSI_BINS))


@dataclass
class NumericDrift:
    """Streaming state of one numeric feature in the current window."""

    name: str
    baseline: BaselineDistribution
    baseline_missing: int
    edges: np.ndarray = field(init=False)
    counts: np.ndarray = field(init=False)
    sketch: QuantileSketch = field(default_factory=QuantileSketch)
    missing: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    minimum: float = np.inf
    maximum: float = -np.inf

    def __post_init__(self) -> None:
        self.edges = decile_edges(self.baseline)
        self.counts = np.zeros(len(self.edges) + 1, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        # One sort serves the sketch, the bin counts (the edges are searched in the sorted
        # values, not each value in the edges) and the extremes.  NaN sorts last.
        ordered = np.sort(values)
        finite = ordered[: int(np.searchsorted(ordered, np.nan, side="left"))]
        if len(finite) and not (np.isfinite(finite[0]) and np.isfinite(finite[-1])):
            finite = finite[np.isfinite(finite)]  # +-inf count as missing
        self.missing += len(values) - len(finite)
        if not len(finite):
            return
        cuts = np.searchsorted(finite, self.edges, side="right")
        self.counts += np.diff(np.concatenate([[0], cuts, [len(finite)]]))
        self.sketch.add_sorted(finite)
        self.total += float(finite.sum())
        self.total_sq += float(np.einsum("i,i->", finite, finite))  # not BLAS: no thread start-up per call
        self.minimum = min(self.minimum, float(finite[0]))
        self.maximum = max(self.maximum, float(finite[-1]))

    @property
    def present(self) -> int:
        return self.sketch.count

    def baseline_shares(self) -> np.ndarray:
        cdf = np.concatenate([[0.0], self.baseline.cdf(self.edges), [1.0]])
        present = np.diff(cdf)
        n = self.baseline.count + self.baseline_missing
        share_present = self.baseline.count / n if n else 1.0
        return np.append(present * share_present, 1.0 - share_present)

    def current_shares(self) -> np.ndarray:
        n = self.present + self.missing
        return np.append(self.counts, self.missing) / n if n else np.zeros(len(self.counts) + 1)

    def ks(self) -> tuple[float, float]:
        values, _ = self.sketch.points()
        if not len(values) or not self.baseline.count:
            return 0.0, 1.0
        grid = np.union1d(values, self.baseline.values)
        d = float(np.max(np.abs(self.sketch.cdf(grid) - self.baseline.cdf(grid))))
        return d, ks_pvalue(d, self.baseline.count, self.present)

    def result(self, psi_threshold: float, ks_threshold: float) -> dict[str, Any]:
        value = psi(self.baseline_shares(), self.current_shares()) if self.present + self.missing else 0.0
        d, p = self.ks()
        ks_drift = p < KS_ALPHA and d > ks_threshold
        n = self.present
        mean = self.total / n if n else None
        return {
            "feature": self.name,
            "kind": "numeric",
            "psi": value,
            "psi_threshold": psi_threshold,
            "ks_statistic": d,
            "ks_pvalue": p,
            "ks_threshold": ks_threshold,
            "drifted": bool(value >= psi_threshold or ks_drift),
            "reason": _reason(value >= psi_threshold, ks_drift, "KS"),
            "current": {
                "count": n,
                "missing": self.missing,
                "mean": mean,
                "std_dev": float(np.sqrt(max(self.total_sq / n - (self.total / n) ** 2, 0.0))) if n else None,
                "min": self.minimum if n else None,
                "max": self.maximum if n else None,
                "quantiles": _quartiles(self.sketch.quantiles(np.array([0.05, 0.25, 0.5, 0.75, 0.95])))
                if n
                else None,
            },
            "baseline": {
                "count": self.baseline.count,
                "missing": self.baseline_missing,
                "quantiles": _quartiles(self.baseline.quantiles(np.array([0.05, 0.25, 0.5, 0.75, 0.95]))),
            },
        }


@dataclass
class CategoricalDrift:
    name: str
    baseline_counts: dict[str, float]
    baseline_missing: int
    domain: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)
    missing: int = 0

    def add(self, values: Any) -> None:
        """values: a pandas Series of strings (NA = missing)."""
        self.missing += int(values.isna().sum())
        for key, count in values.dropna().value_counts().items():
            self.counts[str(key)] = self.counts.get(str(key), 0) + int(count)

    @property
    def present(self) -> int:
        return sum(self.counts.values())

    @property
    def out_of_domain(self) -> int:
        return sum(c for k, c in self.counts.items() if k not in self.domain) if self.domain else 0

    def shares(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        keys = sorted(set(self.baseline_counts) | set(self.counts)) + ["<missing>"]
        base = np.array(
            [self.baseline_counts.get(k, 0.0) for k in keys[:-1]] + [self.baseline_missing], float
        )
        cur = np.array([self.counts.get(k, 0) for k in keys[:-1]] + [self.missing], float)
        return keys, base / max(base.sum(), 1.0), cur / max(cur.sum(), 1.0)

    def result(self, psi_threshold: float, linf_threshold: float) -> dict[str, Any]:
        keys, base, cur = self.shares()
        empty = self.present + self.missing == 0
        value = 0.0 if empty else psi(base, cur)
        linf = 0.0 if empty else float(np.max(np.abs(base - cur)))
        js = 0.0 if empty else float(distance.jensenshannon(base, cur, base=2))
        return {
            "feature": self.name,
            "kind": "categorical",
            "psi": value,
            "psi_threshold": psi_threshold,
            "linf": linf,
            "linf_threshold": linf_threshold,
            "jensen_shannon": js,
            "drifted": bool(value >= psi_threshold or linf > linf_threshold),
            "reason": _reason(value >= psi_threshold, linf > linf_threshold, "L-infinity"),
            "current": {"count": self.present, "missing": self.missing, "shares": _shares(keys, cur)},
            "baseline": {"shares": _shares(keys, base)},
        }


def _shares(keys: list[str], shares: np.ndarray) -> dict[str, float]:
    return {k: float(s) for k, s in zip(keys, shares, strict=True)}


def _quartiles(values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(("p05", "p25", "p50", "p75", "p95"), values, strict=True)}


def _reason(by_psi: bool, by_other: bool, other: str) -> str:
    parts = (["PSI"] if by_psi else []) + ([other] if by_other else [])
    return " and ".join(parts) if parts else ""
