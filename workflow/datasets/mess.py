"""Realistic mess for generated data: what real exports contain and preprocessing must survive.

Text in numeric columns, out-of-range values, unknown categories, missing required values,
exact duplicates, repeated application ids, outliers; deterministic in the seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def _take(pool: list[np.ndarray], rng: np.random.Generator, fraction: float, n: int) -> np.ndarray:
    """Disjoint random row indices: each kind of damage hits different rows."""
    count = max(1, int(round(fraction * n))) if n >= 200 else (1 if fraction > 0 else 0)
    chosen = pool[0][:count]
    pool[0] = pool[0][count:]
    return np.sort(chosen)


def add_mess(entities: pd.DataFrame, history: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns messy copies; the damage is deterministic in `seed`."""
    rng = np.random.default_rng([seed, 1])
    return _messy_entities(entities, rng), _messy_history(history, rng)


def _messy_entities(entities: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Unparseable and out-of-range values, unknown categories, missing required values,
    valid outliers, exact duplicates and resubmitted applications."""
    e = entities.copy()
    n = len(e)
    # Upstream exports these two as text, which is how unparseable numbers get in.
    e["monthly_revenue"] = (
        pa.array(e["monthly_revenue"].to_numpy()).cast(pa.string()).to_pandas().astype(object)
    )
    e["tenure_months"] = e["tenure_months"].astype(str).astype(object)
    e["application_date"] = e["application_date"].astype(object)
    pool = [rng.permutation(n)]

    idx = _take(pool, rng, 0.0015, n)
    e.loc[idx, "monthly_revenue"] = rng.choice(
        ["twelve thousand", "12,5k", "1.2.3", "#VALUE!", "~"], len(idx)
    )
    idx = _take(pool, rng, 0.001, n)
    e.loc[idx, "tenure_months"] = rng.choice(["-3", "-12", "720", "999"], len(idx))
    idx = _take(pool, rng, 0.001, n)
    e["owner_credit_score"] = e["owner_credit_score"].astype("Int16")
    e.loc[idx, "owner_credit_score"] = rng.choice([120, 900, 999], len(idx)).astype(np.int16)
    idx = _take(pool, rng, 0.001, n)
    e.loc[idx, "industry"] = rng.choice(["crypto", "Retail", "retail ", "farming"], len(idx))
    idx = _take(pool, rng, 0.0005, n)
    e.loc[idx, "region"] = "mars"
    idx = _take(pool, rng, 0.0005, n)
    e.loc[idx, "region"] = None
    idx = _take(pool, rng, 0.0005, n)
    e.loc[idx, "requested_amount"] = np.nan
    idx = _take(pool, rng, 0.0005, n)
    e.loc[idx, "defaulted"] = pd.NA
    idx = _take(pool, rng, 0.0005, n)
    e.loc[idx, "application_date"] = rng.choice(
        np.array(["2023-02-30", "yesterday", None], dtype=object), len(idx)
    )
    idx = _take(pool, rng, 0.0003, n)
    e.loc[idx, "application_id"] = None
    # Missing values where the spec allows them.
    e.loc[rng.random(n) < 0.08, "employees"] = pd.NA
    e.loc[rng.random(n) < 0.05, "owner_credit_score"] = pd.NA
    # Outliers that are still valid.
    idx = _take(pool, rng, 0.001, n)
    e.loc[idx, "monthly_revenue"] = [f"{float(v) * 40:.2f}" for v in e.loc[idx, "monthly_revenue"]]
    idx = _take(pool, rng, 0.001, n)
    e.loc[idx, "requested_amount"] = np.minimum(e.loc[idx, "requested_amount"].to_numpy() * 25, 5_000_000)
    # Exact duplicates and repeated application ids (a resubmitted application).
    exact = e.iloc[_take(pool, rng, 0.004, n)]
    again = e.iloc[_take(pool, rng, 0.0015, n)].copy()
    again["requested_amount"] = np.round(again["requested_amount"].to_numpy() * 1.1, 2)
    e = pd.concat([e, exact, again], ignore_index=True)
    e = e.iloc[rng.permutation(len(e))].reset_index(drop=True)
    return e


def _messy_history(history: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Missing and out-of-range values, rows without a merchant, duplicates."""
    h = history.copy()
    hn = len(h)
    hpool = [rng.permutation(hn)]
    for column in ("card_volume", "txn_count", "chargebacks", "amount_due", "amount_paid", "days_late"):
        h.loc[rng.random(hn) < 0.01, column] = np.nan
    idx = _take(hpool, rng, 0.0001, hn)
    h.loc[idx, "card_volume"] = -h.loc[idx, "card_volume"].abs() - 1
    idx = _take(hpool, rng, 0.0001, hn)
    h.loc[idx, "days_late"] = 999
    idx = _take(hpool, rng, 0.00005, hn)
    h.loc[idx, "merchant_id"] = np.nan  # no merchant id
    exact = h.iloc[_take(hpool, rng, 0.002, hn)]
    again = h.iloc[_take(hpool, rng, 0.0005, hn)].copy()
    again["card_volume"] = np.round(again["card_volume"].to_numpy() * 0.9, 2)
    return pd.concat([h, exact, again], ignore_index=True)
