"""Attribution drift: mean |SHAP contribution| per feature now against the baseline's.

XGBoost computes exact TreeSHAP contributions itself (`pred_contribs=True`), so no extra
library is needed.  The current window is sampled uniformly (a reservoir of `rows` model
rows) to bound the cost; evaluation computes the baseline on the test split the same way.
Drift is the total-variation distance between the two attribution profiles (each normalised
to shares): 0 when features matter as much as before, 1 when the model leans on entirely
different features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline_steps.common.attribution import SAMPLE_ROWS

DEFAULT_ROWS = SAMPLE_ROWS
DEFAULT_THRESHOLD = 0.1


class Reservoir:
    """A uniform sample of at most `size` rows from a stream of matrices."""

    def __init__(self, size: int, columns: int, seed: int = 0) -> None:
        self.rows = np.empty((size, columns), dtype=np.float32)
        self.size, self.seen, self.rng = size, 0, np.random.default_rng(seed)

    def add(self, X: np.ndarray) -> None:
        n = len(X)
        room = max(0, min(self.size - self.seen, n))
        self.rows[self.seen : self.seen + room] = X[:room]
        if room < n:
            positions = self.seen + np.arange(room, n)  # stream positions of the rest
            slots = (self.rng.random(n - room) * (positions + 1)).astype(np.int64)
            keep = slots < self.size
            self.rows[slots[keep]] = X[room:][keep]
        self.seen += n

    def sample(self) -> np.ndarray:
        return self.rows[: min(self.seen, self.size)]


def compare(now: dict[str, float], baseline: dict[str, float], threshold: float) -> dict[str, Any]:
    names = [n for n in baseline if n in now]
    if not names:
        return {"available": False, "reason": "no baseline attributions in the evaluation output"}
    b = np.array([baseline[n] for n in names])
    c = np.array([now[n] for n in names])
    bs, cs = b / max(b.sum(), 1e-12), c / max(c.sum(), 1e-12)
    distance = float(0.5 * np.abs(bs - cs).sum())
    rank_b = {n: i + 1 for i, n in enumerate(sorted(names, key=lambda n: -baseline[n]))}
    rank_c = {n: i + 1 for i, n in enumerate(sorted(names, key=lambda n: -now[n]))}
    return {
        "available": True,
        "distance": distance,
        "threshold": threshold,
        "drifted": distance > threshold,
        "features": [
            {
                "feature": n,
                "baseline": baseline[n],
                "now": now[n],
                "baseline_share": float(bs[i]),
                "share": float(cs[i]),
                "baseline_rank": rank_b[n],
                "rank": rank_c[n],
            }
            for i, n in sorted(enumerate(names), key=lambda t: -now[t[1]])
        ],
    }
