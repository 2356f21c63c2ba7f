"""Reading one table's input files: every file must have exactly the spec's columns.

Rows keep where they came from (file and 1-based row number), so a quarantined row can be
found in its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_steps.common.contract import DataError
from pipeline_steps.preprocess import files as io


@dataclass
class TableInput:
    name: str
    frame: pd.DataFrame
    source: np.ndarray  # index into `files`, per row
    row_number: np.ndarray  # 1-based row within its file (header not counted)
    files: list[str]


def read_inputs(
    paths: list[Path], table: str, expected: list[str], dictionary_columns: tuple[str, ...] = ()
) -> TableInput:
    if not paths:
        raise DataError(
            f"{table}: input is empty: no CSV or Parquet files found "
            "(with ShardedByS3Key, use at least as many files as instances)"
        )
    frames, sources, numbers = [], [], []
    for i, path in enumerate(paths):
        frame = io.read_table(path, dictionary_columns)
        columns = [str(c) for c in frame.columns]
        missing = [c for c in expected if c not in columns]
        extra = [c for c in columns if c not in expected]
        if missing:
            raise DataError(f"{table} file {path.name}: missing column(s) {missing} that the spec requires")
        if extra:
            raise DataError(f"{table} file {path.name}: extra column(s) {extra} that the spec does not name")
        frames.append(frame[expected])
        sources.append(np.full(len(frame), i, dtype=np.int32))
        numbers.append(np.arange(1, len(frame) + 1, dtype=np.int64))
    total = sum(len(f) for f in frames)
    if total == 0:
        raise DataError(f"{table}: input is empty: 0 rows in {[p.name for p in paths]}")
    frame = frames[0].reset_index(drop=True) if len(frames) == 1 else _concat(frames)
    return TableInput(table, frame, np.concatenate(sources), np.concatenate(numbers), [p.name for p in paths])


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenates, keeping categoricals categorical (union of categories)."""
    out = {}
    for name in frames[0].columns:
        parts = [f[name] for f in frames]
        if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            out[name] = pd.api.types.union_categoricals([p.array for p in parts], ignore_order=True)
        else:
            if len({str(p.dtype) for p in parts}) > 1:
                parts = [
                    p.astype("string") if not isinstance(p.dtype, pd.CategoricalDtype) else p.astype("string")
                    for p in parts
                ]
            out[name] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(
        {
            k: (pd.Series(v) if not isinstance(v, pd.Series) else v.reset_index(drop=True))
            for k, v in out.items()
        }
    )
