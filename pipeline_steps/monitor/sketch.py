"""A mergeable quantile sketch with a known rank-error bound, and the baseline's KLL sample.

Streaming chunks: each chunk is sorted and summarised by at most `k` weighted points (every
m-th value stands for the m values around it), so a chunk of n values is off by at most
n / (2k) ranks.  When the summaries grow past `limit` points they are merged into `k` points
by cumulative weight, which costs at most W / (2k) more ranks, W being the weight so far.  With
the defaults (k = 4096, limit = 16 k) the worst case over millions of rows is far below 1 %
of the count (tests/test_steps_monitor_drift.py measures it against exact quantiles).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DEFAULT_K = 4096


class QuantileSketch:
    def __init__(self, k: int = DEFAULT_K) -> None:
        self.k = k
        self.limit = 16 * k
        self._values: list[np.ndarray] = []
        self._weights: list[np.ndarray] = []
        self._points = 0
        self.count = 0
        self.max_rank_error = 0.0  # the bound, in ranks, of what summarising has cost so far

    def add(self, values: np.ndarray) -> None:
        """Adds finite values (the caller drops NaN)."""
        self.add_sorted(np.sort(values))

    def add_sorted(self, v: np.ndarray) -> None:
        """Adds finite values already sorted ascending."""
        n = len(v)
        if not n:
            return
        if n <= self.k:
            self._append(v, np.ones(n))
        else:
            m = math.ceil(n / self.k)
            starts = np.arange(0, n, m)
            sizes = np.diff(np.append(starts, n))
            self._append(v[starts + sizes // 2], sizes.astype(np.float64))
            self.max_rank_error += m / 2
        self.count += n
        if self._points > self.limit:
            self._compress()

    def _append(self, values: np.ndarray, weights: np.ndarray) -> None:
        self._values.append(values.astype(np.float64, copy=False))
        self._weights.append(weights)
        self._points += len(values)

    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._values:
            return np.empty(0), np.empty(0)
        values = np.concatenate(self._values)
        weights = np.concatenate(self._weights)
        order = np.argsort(values, kind="stable")
        return values[order], weights[order]

    def _compress(self) -> None:
        values, weights = self._merged()
        total = weights.sum()
        cumulative = np.cumsum(weights)
        # k points at the middle of k equal slices of the cumulative weight
        targets = (np.arange(self.k) + 0.5) * (total / self.k)
        picked = np.minimum(np.searchsorted(cumulative, targets), len(values) - 1)
        self._values, self._weights, self._points = [], [], 0
        self._append(values[picked], np.full(self.k, total / self.k))
        self.max_rank_error += total / (2 * self.k)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted values, weights)."""
        return self._merged()

    def quantiles(self, qs: np.ndarray) -> np.ndarray:
        values, weights = self._merged()
        if not len(values):
            return np.full(len(qs), np.nan)
        cumulative = np.cumsum(weights)
        ranks = np.asarray(qs, dtype=np.float64) * cumulative[-1]
        return values[np.minimum(np.searchsorted(cumulative, ranks), len(values) - 1)]

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Share of values <= x (right-continuous)."""
        values, weights = self._merged()
        if not len(values):
            return np.zeros(len(x))
        cumulative = np.concatenate([[0.0], np.cumsum(weights)])
        return cumulative[np.searchsorted(values, x, side="right")] / cumulative[-1]

    def to_model_monitor(self, points: int = 2048) -> list[float]:
        """Evenly spaced quantiles, the sample statistics.json stores as its KLL `data`."""
        return [float(v) for v in self.quantiles(np.linspace(0, 1, points))]


class BaselineDistribution:
    """A baseline numeric distribution from statistics.json: evenly spaced quantiles."""

    def __init__(self, quantiles: list[float] | np.ndarray, count: int) -> None:
        self.values = np.sort(np.asarray(quantiles, dtype=np.float64))
        self.count = int(count)

    @classmethod
    def from_statistics(cls, numerical: dict[str, Any]) -> BaselineDistribution:
        sketch = numerical["distribution"]["kll"]["sketch"]["data"]
        flat = [x for level in sketch for x in level]
        return cls(flat, numerical["common"]["num_present"])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if not len(self.values):
            return np.zeros(len(x))
        return np.searchsorted(self.values, x, side="right") / len(self.values)

    def quantiles(self, qs: np.ndarray) -> np.ndarray:
        if not len(self.values):
            return np.full(len(qs), np.nan)
        index = np.minimum((np.asarray(qs) * len(self.values)).astype(int), len(self.values) - 1)
        return self.values[index]
