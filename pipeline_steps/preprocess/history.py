"""Point-in-time aggregates of the history table, vectorised.

For an entity whose time falls in month M, an aggregate over N months uses the history rows
of the same key whose month m satisfies M - N <= m < M: whole months strictly before the
entity's month.  Rows from the entity's own month or later (the outcome period) are never
read, so a history row dated after the application changes nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import FeatureSpec


def month_index(times: pd.Series) -> np.ndarray:
    """Months since 1970-01 (NaT -> a large negative number)."""
    return times.to_numpy().astype("datetime64[M]").astype(np.int64)


def _pairs(entity_keys: pd.Series, history_keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(entity row, history row) for every history row whose key matches an entity's key."""
    if isinstance(history_keys.dtype, pd.CategoricalDtype):
        cats = pd.Index(history_keys.cat.categories.astype(str))
        hcode = history_keys.cat.codes.to_numpy().astype(np.int64)
    else:
        hcode, cats = pd.factorize(history_keys.astype("string"))
        cats = pd.Index(cats.astype(str))
        hcode = hcode.astype(np.int64)
    ecode = cats.get_indexer(entity_keys.astype("string").fillna("\0").astype(str))
    has = ecode >= 0
    if pd.Series(ecode[has]).is_unique:  # one entity per key: a direct lookup table
        row_of = np.full(len(cats) + 1, -1, dtype=np.int64)
        row_of[ecode[has]] = np.flatnonzero(has)
        erow = row_of[hcode]  # hcode -1 (missing key) picks the sentinel at the end
        hrow = np.flatnonzero(erow >= 0)
        return erow[hrow], hrow
    left = pd.DataFrame({"code": ecode[has], "erow": np.flatnonzero(has)})
    right = pd.DataFrame({"code": hcode, "hrow": np.arange(len(hcode))})
    joined = left.merge(right, on="code", how="inner")
    return joined["erow"].to_numpy(), joined["hrow"].to_numpy()


def aggregate(entities: pd.DataFrame, history: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Returns one column per spec aggregate, aligned with `entities` rows."""
    h = spec.history
    assert h is not None, "aggregates need the spec's history table"
    n = len(entities)
    out: dict[str, np.ndarray] = {}
    erow, hrow = _pairs(entities[spec.entity_key], history[h.key])
    offset = month_index(entities[spec.entity_time])[erow] - month_index(history[h.time])[hrow]
    for a in h.aggregates:
        raw = history[a.column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)[hrow]
        sel = (offset >= 1) & (offset <= a.months) & ~np.isnan(values)
        rows, v = erow[sel], values[sel]
        count = np.bincount(rows, minlength=n)
        if a.fn == "count":
            out[a.name] = count.astype(np.int64)
            continue
        if a.fn in ("sum", "mean"):
            total = np.bincount(rows, weights=v, minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                result = total if a.fn == "sum" else total / count
        else:
            grouped = pd.Series(v).groupby(rows)
            agg = getattr(grouped, a.fn)()
            result = np.full(n, np.nan)
            result[agg.index.to_numpy()] = agg.to_numpy()
        out[a.name] = np.where(count > 0, result, np.nan)
    return pd.DataFrame(out)
