"""Reading the preprocess step's split folders (`part-<host>.parquet` files).

Shared by training and evaluation: the files are found the same way and a missing column
or an empty folder fails with a message that names the split and the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_steps.common.contract import DataError


def parquet_files(folder: Path, what: str) -> list[Path]:
    """Every .parquet file under folder (recursively), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what}: folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*.parquet") if p.is_file())
    if not files:
        raise DataError(f"{what}: no .parquet files in {folder}")
    return files


def read_split_table(folder: Path, columns: Sequence[str], what: str) -> pa.Table:
    """The named columns of every file of a split, concatenated in file order."""
    tables = []
    for path in parquet_files(folder, what):
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataError(f"{what}: {path.name} is not a readable Parquet file: {err}") from None
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DataError(f"{what}: {path.name} is missing column(s) {missing}")
        tables.append(pq.read_table(path, columns=list(columns)))
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
