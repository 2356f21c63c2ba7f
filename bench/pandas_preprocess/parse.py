"""One column's raw values -> typed values plus masks of what is wrong with each row.

Works on text (CSV) and on typed Parquet columns alike, vectorised: no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import Column
from pipeline_steps.common.transform import to_bool_float

NULL_TEXT = ("", "na", "n/a", "nan", "null", "none", "<na>")
TIME_UNIT = "datetime64[ms]"


@dataclass
class Parsed:
    values: pd.Series  # typed; null where missing or invalid
    null: np.ndarray  # missing (null or an empty/NA token)
    unparseable: np.ndarray  # present but not of the column's type
    out_of_range: np.ndarray  # parsed but outside the spec's min/max
    unknown: np.ndarray  # a category outside the spec's list

    @property
    def invalid(self) -> np.ndarray:
        return self.unparseable | self.out_of_range | self.unknown


def is_textual(s: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(s.dtype)
        or pd.api.types.is_string_dtype(s.dtype)
        or isinstance(s.dtype, pd.CategoricalDtype)
    )


def _lower_strip(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip().str.lower()


def null_mask(s: pd.Series) -> np.ndarray:
    mask = s.isna().to_numpy(dtype=bool, copy=True)
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = _lower_strip(pd.Series(s.cat.categories)).isin(NULL_TEXT).to_numpy(dtype=bool)
        codes = s.cat.codes.to_numpy()
        mask |= (codes >= 0) & cats[np.maximum(codes, 0)] if len(cats) else False
    elif is_textual(s):
        mask |= _lower_strip(s).isin(NULL_TEXT).fillna(False).to_numpy(dtype=bool)
    return mask


def text(s: pd.Series) -> pd.Series:
    """Values as nullable strings (for categories, ids and the quarantine)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.dt.strftime("%Y-%m-%d").astype("string")
    return s.astype("string")


def _numbers(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64")
    if pd.api.types.is_numeric_dtype(s.dtype):
        return pd.to_numeric(s, errors="coerce").astype("float64")
    return pd.to_numeric(s.astype("string").str.strip(), errors="coerce").astype("float64")


def parse_dates(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s
    else:
        out = pd.to_datetime(s.astype("string").str.strip(), format="ISO8601", errors="coerce", utc=True)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out.astype(TIME_UNIT)


def _nullable_int(v: np.ndarray, dtype: type) -> pd.Series:
    missing = np.isnan(v)
    return pd.Series(pd.arrays.IntegerArray(np.where(missing, 0, v).astype(dtype), missing))


def parse_column(s: pd.Series, col: Column) -> Parsed:
    n = len(s)
    null = null_mask(s)
    present = ~null
    none = np.zeros(n, dtype=bool)
    unparseable, out_of_range, unknown = none, none.copy(), none.copy()
    if col.type in ("number", "integer"):
        num = _numbers(s)
        v = num.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isfinite(v)
        if col.type == "integer":
            with np.errstate(invalid="ignore"):
                bad |= np.isfinite(v) & (v != np.round(v))
        unparseable = present & bad
        ok = present & ~unparseable
        with np.errstate(invalid="ignore"):
            if col.min is not None:
                out_of_range |= ok & (v < col.min)
            if col.max is not None:
                out_of_range |= ok & (v > col.max)
        v = np.where(ok & ~out_of_range, v, np.nan)
        values = pd.Series(v) if col.type == "number" else _nullable_int(v, np.int64)
    elif col.type == "boolean":
        v = to_bool_float(s.where(~pd.Series(null, index=s.index), None) if is_textual(s) else s)
        unparseable = present & np.isnan(v)
        values = _nullable_int(np.where(null, np.nan, v), np.int8)
    elif col.type == "date":
        d = parse_dates(s)
        unparseable = present & d.isna().to_numpy()
        values = d.where(~pd.Series(null | unparseable, index=d.index)).reset_index(drop=True)
    elif col.type == "category":
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = pd.Series(s.cat.categories.astype(str))
            known = cats.isin(col.categories).to_numpy(dtype=bool)
            codes = s.cat.codes.to_numpy()
            unknown = present & ~((codes >= 0) & (known[np.maximum(codes, 0)] if len(known) else False))
        else:
            unknown = present & ~s.astype("string").isin(col.categories).fillna(False).to_numpy(dtype=bool)
        values = text(s).where(~pd.Series(null | unknown, index=s.index)).reset_index(drop=True)
    elif isinstance(s.dtype, pd.CategoricalDtype):  # string kept as a categorical (repeated keys)
        values = s.where(~pd.Series(null, index=s.index)).reset_index(drop=True)
    else:  # string
        values = text(s).where(~pd.Series(null, index=s.index)).reset_index(drop=True)
    return Parsed(values.reset_index(drop=True), null, unparseable, out_of_range, unknown)
