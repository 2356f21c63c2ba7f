"""Realistic mess for generated data: what real exports contain and preprocessing must survive.

Text in numeric columns, out-of-range values, unknown categories, missing required values,
exact duplicates, repeated application ids, outliers; deterministic in the random stream.
The history is handled as numpy columns (`History`): it is 26 times the entities' size.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

HISTORY_VALUES = ("card_volume", "txn_count", "chargebacks", "amount_due", "amount_paid", "days_late")
COUNTS = ("txn_count", "chargebacks", "days_late")  # int64, -1 where missing (never a real count)


@dataclass
class History:
    """Monthly history rows as numpy columns: `number` is the merchant's number (-1: no merchant),
    the amounts are float64 with NaN for missing, the COUNTS int64 with -1 for missing (no float
    round trip for them on the way to Parquet)."""

    number: np.ndarray
    month: np.ndarray  # datetime64[D]
    card_volume: np.ndarray
    txn_count: np.ndarray
    chargebacks: np.ndarray
    amount_due: np.ndarray
    amount_paid: np.ndarray
    days_late: np.ndarray

    def __len__(self) -> int:
        return len(self.number)

    def take(self, idx: np.ndarray) -> History:
        return History(*(getattr(self, f.name)[idx] for f in fields(self)))

    @staticmethod
    def concat(parts: list[History]) -> History:
        return History(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(History)))

    def to_frame(self, categories: np.ndarray, first_number: int) -> pd.DataFrame:
        """The pandas form: merchant_id a categorical over `categories` (the ids of merchant
        numbers first_number, first_number + 1, ...)."""
        codes = np.where(self.number < 0, -1, self.number - first_number)
        frame = {
            "merchant_id": pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))
        }
        frame["month"] = self.month
        for name in _FRAME_ORDER:  # the counts as floats with NaN, as pandas holds a column with gaps
            values = getattr(self, name)
            frame[name] = np.where(values < 0, np.nan, values) if name in COUNTS else values
        return pd.DataFrame(frame)

    @staticmethod
    def from_frame(h: pd.DataFrame) -> History:
        ids = h["merchant_id"].astype("string")
        digits = pd.to_numeric(ids.str.slice(1), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        number = np.where(np.isnan(digits), -1, np.nan_to_num(digits)).astype(np.int64)
        values = {
            n: pd.to_numeric(h[n]).to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            for n in HISTORY_VALUES
        }
        for n in COUNTS:
            values[n] = np.where(np.isnan(values[n]), -1, values[n]).astype(np.int64)
        return History(number=number, month=h["month"].to_numpy().astype("datetime64[D]"), **values)


_FRAME_ORDER = ("card_volume", "txn_count", "chargebacks", "amount_due", "amount_paid", "days_late")


def _take(pool: list[np.ndarray], fraction: float, n: int) -> np.ndarray:
    """Disjoint random row indices: each kind of damage hits different rows."""
    count = _count(fraction, n)
    chosen = pool[0][:count]
    pool[0] = pool[0][count:]
    return np.sort(chosen)


def add_mess(entities: pd.DataFrame, history: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Messy copies of whole tables (history with merchant_id as generated: a categorical);
    the damage is deterministic in `seed`."""
    table = pa.Table.from_pandas(entities, preserve_index=False)
    e, _, pieces = mess_block(table, History.from_frame(history), np.random.default_rng([seed, 1]))
    h = History.concat(pieces)
    categories = history["merchant_id"].cat.categories.to_numpy()
    first = int(categories[0][1:]) if len(categories) else 0
    return entity_frame(e), h.to_frame(categories, first)


def entity_frame(entities: pa.Table) -> pd.DataFrame:
    """The pandas form of an entity table: nullable integers and booleans keep their type."""
    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return entities.to_pandas(types_mapper=nullable.get)


def mess_block(
    entities: pa.Table, history: History, rng: np.random.Generator
) -> tuple[pa.Table, np.ndarray, list[History]]:
    """Messy entities with, for each row, the row of `entities` it comes from; and the history
    damaged in place followed by its duplicated rows."""
    messy, rows = _messy_entities(entities, rng)
    return messy, rows, _messy_history(history, rng)


def _messy_entities(entities: pa.Table, rng: np.random.Generator) -> tuple[pa.Table, np.ndarray]:
    """Unparseable and out-of-range values, unknown categories, missing required values,
    valid outliers, exact duplicates and resubmitted applications.  Returns the messy table
    and, for each of its rows, the row of `entities` it comes from."""
    n = len(entities)
    cols = {name: entities.column(name).combine_chunks() for name in entities.column_names}
    # Upstream exports these two as text, which is how unparseable numbers get in.
    for name in ("monthly_revenue", "tenure_months"):
        cols[name] = cols[name].cast(pa.string())

    def put(name: str, idx: np.ndarray, values: Any) -> None:
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        cols[name] = pc.replace_with_mask(cols[name], pa.array(mask), pa.array(values, type=cols[name].type))

    def blank(name: str, mask: np.ndarray) -> None:
        cols[name] = pc.if_else(pa.array(mask), pa.scalar(None, cols[name].type), cols[name])

    pool = [rng.permutation(n)]
    idx = _take(pool, 0.0015, n)
    put("monthly_revenue", idx, rng.choice(["twelve thousand", "12,5k", "1.2.3", "#VALUE!", "~"], len(idx)))
    idx = _take(pool, 0.001, n)
    put("tenure_months", idx, rng.choice(["-3", "-12", "720", "999"], len(idx)))
    idx = _take(pool, 0.001, n)
    put("owner_credit_score", idx, rng.choice([120, 900, 999], len(idx)).astype(np.int16))
    idx = _take(pool, 0.001, n)
    put("industry", idx, rng.choice(["crypto", "Retail", "retail ", "farming"], len(idx)))
    idx = _take(pool, 0.0005, n)
    put("region", idx, ["mars"] * len(idx))
    for name in ("region", "requested_amount", "defaulted"):
        idx = _take(pool, 0.0005, n)
        put(name, idx, [None] * len(idx))
    idx = _take(pool, 0.0005, n)
    bad_dates = np.array(["2023-02-30", "yesterday", None], dtype=object)
    put("application_date", idx, rng.choice(bad_dates, len(idx)))
    idx = _take(pool, 0.0003, n)
    put("application_id", idx, [None] * len(idx))
    # Missing values where the spec allows them.
    blank("employees", rng.random(n) < 0.08)
    blank("owner_credit_score", rng.random(n) < 0.05)
    # Outliers that are still valid.
    idx = _take(pool, 0.001, n)
    revenue = cols["monthly_revenue"].take(idx).to_pylist()
    put("monthly_revenue", idx, [f"{float(v) * 40:.2f}" for v in revenue])
    idx = _take(pool, 0.001, n)
    put("requested_amount", idx, np.minimum(_floats(cols["requested_amount"].take(idx)) * 25, 5_000_000))
    # Exact duplicates and repeated application ids (a resubmitted application).
    e = pa.table(cols)
    exact = _take(pool, 0.004, n)
    again_rows = _take(pool, 0.0015, n)
    again = e.take(again_rows)
    resubmitted = np.round(_floats(again.column("requested_amount")) * 1.1, 2)
    again = again.set_column(
        again.schema.get_field_index("requested_amount"),
        "requested_amount",
        pa.array(resubmitted, from_pandas=True),
    )
    rows = np.concatenate([np.arange(n), exact, again_rows])
    order = rng.permutation(len(rows))
    return pa.concat_tables([e, e.take(exact), again]).take(order), rows[order]


def _floats(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """float64 values, NaN where missing."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


_HISTORY_DAMAGE = (0.0001, 0.0001, 0.00005, 0.002, 0.0005)  # the fractions taken below, in order


def _count(fraction: float, n: int) -> int:
    return max(1, int(round(fraction * n))) if n >= 200 else (1 if fraction > 0 else 0)


def _bernoulli_rows(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """Rows 0..n-1, each chosen with probability p on its own: a Bernoulli process drawn as its
    geometric gaps, so about p * n draws instead of n."""
    size = int(n * p + 6 * np.sqrt(n * p)) + 16
    rows = np.cumsum(rng.geometric(p, size=size)) - 1
    while rows[-1] < n:  # rarely: the gaps fell short of the end
        rows = np.concatenate([rows, rows[-1] + np.cumsum(rng.geometric(p, size=size // 4 + 16))])
    return rows[rows < n]


def _messy_history(h: History, rng: np.random.Generator) -> list[History]:
    """Missing and out-of-range values, rows without a merchant (all in place), then the
    duplicated rows: exact copies and copies with another card volume."""
    hn = len(h)
    needed = min(hn, sum(_count(f, hn) for f in _HISTORY_DAMAGE))
    hpool = [rng.choice(hn, size=needed, replace=False)]  # disjoint rows, without shuffling them all
    for name in HISTORY_VALUES:
        getattr(h, name)[_bernoulli_rows(rng, hn, 0.01)] = -1 if name in COUNTS else np.nan
    idx = _take(hpool, 0.0001, hn)
    h.card_volume[idx] = -np.abs(h.card_volume[idx]) - 1
    idx = _take(hpool, 0.0001, hn)
    h.days_late[idx] = 999
    idx = _take(hpool, 0.00005, hn)
    h.number[idx] = -1  # no merchant id
    exact = h.take(_take(hpool, 0.002, hn))
    again = h.take(_take(hpool, 0.0005, hn))
    again.card_volume = np.round(again.card_volume * 0.9, 2)
    return [h, exact, again]
