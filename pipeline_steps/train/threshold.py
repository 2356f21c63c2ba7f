"""The decision threshold: the one that maximises F1 on the validation split.

The model's probabilities stay calibrated (no class reweighting by default, which matters when
a probability of default prices a loan); the class imbalance is handled where the decision is
made.  Counts are kept in 1,000 probability bins so hosts of a distributed job can add theirs.
"""

from __future__ import annotations

import numpy as np

from pipeline_steps.train import distributed

BINS = 1000


def f1_threshold(y: np.ndarray, p: np.ndarray, is_distributed: bool) -> dict[str, float | str]:
    edges = np.linspace(0.0, 1.0, BINS + 1)
    positives = np.histogram(p[y == 1], edges)[0].astype(np.float64)
    negatives = np.histogram(p[y == 0], edges)[0].astype(np.float64)
    summed = distributed.allreduce_sum(list(positives) + list(negatives), is_distributed)
    positives, negatives = np.asarray(summed[:BINS]), np.asarray(summed[BINS:])
    # Predicting positive at p >= edges[i] catches every bin from i upwards.
    tp = np.cumsum(positives[::-1])[::-1]
    fp = np.cumsum(negatives[::-1])[::-1]
    fn = positives.sum() - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    best = int(np.argmax(f1))
    return {"value": float(edges[best]), "validation_f1": float(f1[best]), "method": "max F1 on validation"}
