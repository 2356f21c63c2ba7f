"""Split by entity time: train is the oldest, then validation, then test; never at random."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline_steps.common.contract import DataError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Cuts:
    validation_start: pd.Timestamp
    test_start: pd.Timestamp
    source: str  # "fractions" or "dates"


def cut_dates(
    times: pd.Series,
    validation_fraction: float,
    test_fraction: float,
    validation_start: str | None = None,
    test_start: str | None = None,
) -> Cuts:
    if (validation_start is None) != (test_start is None):
        raise DataError("--validation-start and --test-start go together: give both or neither")
    if validation_start is not None:
        try:
            v, t = pd.Timestamp(validation_start), pd.Timestamp(test_start)
        except ValueError as err:
            raise DataError(f"--validation-start/--test-start: not an ISO date: {err}") from err
        if not v < t:
            raise DataError(f"--validation-start {v.date()} must be before --test-start {t.date()}")
        return Cuts(v, t, "dates")
    ordered = np.sort(times.to_numpy())
    n = len(ordered)
    v_at = min(int(np.floor(n * (1 - validation_fraction - test_fraction))), n - 1)
    t_at = min(int(np.floor(n * (1 - test_fraction))), n - 1)
    return Cuts(pd.Timestamp(ordered[v_at]), pd.Timestamp(ordered[t_at]), "fractions")


def assign(times: pd.Series, cuts: Cuts) -> np.ndarray:
    """0 train, 1 validation, 2 test: the same time always lands in the same split."""
    t = times.to_numpy()
    return (t >= np.datetime64(cuts.validation_start)).astype(np.int8) + (t >= np.datetime64(cuts.test_start))


def stratified_random_assign(
    ids: pd.Series, labels: np.ndarray, validation_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """0 train, 1 validation, 2 test for data without a time column.

    Within each label class, rows are ordered by a seeded hash of their id and cut at the
    spec's fractions: every class keeps its rate in every split, the same seed and ids always
    give the same split, and a row's place does not depend on the order of the input.
    """
    key = f"{seed:016d}"[-16:]
    hashed = pd.util.hash_pandas_object(ids.astype("string"), index=False, hash_key=key).to_numpy()
    which = np.zeros(len(ids), dtype=np.int8)
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        order = rows[np.lexsort((ids.to_numpy(dtype=object)[rows].astype(str), hashed[rows]))]
        n = len(order)
        v_at = int(round(n * (1 - validation_fraction - test_fraction)))
        t_at = int(round(n * (1 - test_fraction)))
        which[order[v_at:t_at]] = 1
        which[order[t_at:]] = 2
    return which
