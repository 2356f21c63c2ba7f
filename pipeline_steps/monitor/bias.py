"""Bias per segment (Clarify is closed to new customers): selection rate and quality per
segment, the largest gap between segments and the four-fifths ratio.

Selection = the favourable decision: a credit applicant is approved when the model does NOT
flag a default (probability below the decision threshold).  The four-fifths ratio is the
lowest segment approval rate over the highest; below 0.8 is the usual adverse-impact flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline_steps.monitor.quality import MIN_LABELED, realized

FOUR_FIFTHS = 0.8
MIN_SEGMENT_ROWS = 30  # smaller segments are listed but left out of gaps and ratios
MIN_SEGMENT_LABELS = 100  # ... and of the quality gaps with fewer labels than this


def segment_report(
    segment_values: np.ndarray, scores: np.ndarray, labels: np.ndarray, threshold: float
) -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    for value in sorted(set(segment_values.tolist())):
        mask = segment_values == value
        p = scores[mask]
        y = labels[mask]
        has = ~np.isnan(y)
        real = realized(y[has], p[has], threshold) if has.sum() >= MIN_LABELED else None
        groups.append(
            {
                "segment": str(value),
                "records": int(mask.sum()),
                "approval_rate": float(np.mean(p < threshold)),
                "mean_score": float(p.mean()),
                "labeled": int(has.sum()),
                "default_rate": float(y[has].mean()) if has.any() else None,
                "auc": real["auc"] if real else None,
                "precision": real["precision"] if real else None,
                "recall": real["recall"] if real else None,
            }
        )
    big = [g for g in groups if g["records"] >= MIN_SEGMENT_ROWS]
    gaps = {}
    for key in ("approval_rate", "auc", "precision", "recall"):
        # quality gaps only between segments with enough labels to say something
        pool = big if key == "approval_rate" else [g for g in big if g["labeled"] >= MIN_SEGMENT_LABELS]
        values = [(g[key], g["segment"]) for g in pool if g[key] is not None]
        if len(values) >= 2:
            (lo, lo_seg), (hi, hi_seg) = min(values), max(values)
            gaps[key] = {"gap": hi - lo, "lowest": lo_seg, "highest": hi_seg}
    rates = [g["approval_rate"] for g in big]
    ratio = (min(rates) / max(rates)) if len(rates) >= 2 and max(rates) > 0 else None
    return {
        "segments": groups,
        "largest_gaps": gaps,
        "four_fifths_ratio": ratio,
        "adverse_impact": bool(ratio is not None and ratio < FOUR_FIFTHS),
    }
