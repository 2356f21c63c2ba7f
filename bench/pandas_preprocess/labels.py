"""The label column: two classes, the positive one(s) named by the spec, any spelling of them.

'1.0' and 1 are the same label, so are 'Yes ' and 'yes'; a third value is a bad row, and a
column mostly made of third values is a schema error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pandas_preprocess.parse import null_mask
from pipeline_steps.common.contract import DataError


@dataclass
class Label:
    name: str
    positives: tuple


def _normalise(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Label values -> comparable text ('1.0' and 1 -> '1'; 'Yes ' -> 'yes'), and numeric-ness."""
    t = s.astype("string").str.strip()
    num = pd.to_numeric(t, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    integral = np.isfinite(num) & (num == np.round(num))
    as_int = pd.Series(np.where(integral, num, 0).astype(np.int64)).astype("string")
    norm = pd.Series(np.where(integral, as_int.to_numpy(dtype=object), t.str.lower().to_numpy(dtype=object)))
    return norm, integral


def parse_label(
    s: pd.Series, label: Label, table: str, max_invalid: float
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    null = null_mask(s)
    norm, integral = _normalise(s)
    positives = set(_normalise(pd.Series([str(v) for v in label.positives]))[0])
    is_pos = norm.isin(positives).to_numpy(dtype=bool) & ~null
    others = norm[~null & ~is_pos].value_counts()
    negative = others.index[0] if len(others) else None
    unexpected = ~null & ~is_pos & (norm != negative).to_numpy(dtype=bool)
    present = int((~null).sum())
    if present and unexpected.sum() / present > max_invalid:
        raise DataError(
            f"{table} label '{label.name}': more than two distinct values "
            f"{sorted(others.index.astype(str))[:6]} with positive {list(label.positives)}"
        )
    ok = ~null & ~unexpected
    if ok.any() and integral[ok].all():
        values = pd.Series(pd.arrays.IntegerArray(np.where(ok, is_pos, 0).astype(np.int8), ~ok))
    else:
        values = s.astype("string").str.strip().where(pd.Series(ok, index=s.index)).reset_index(drop=True)
    return values, null, unexpected
