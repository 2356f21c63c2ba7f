"""Input discovery, reading CSV/Parquet, content hashes and atomic writes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline_steps.common import atomic
from pipeline_steps.common.atomic import atomic_write
from pipeline_steps.common.contract import DataError

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
NULL_TOKENS = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None"]


def list_inputs(folder: str | Path, table: str) -> list[Path]:
    """Every CSV/Parquet file under `folder` (recursively), in a stable order."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise DataError(f"{table}: input folder {folder} does not exist")
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES))
    return found


def read_header(path: Path) -> list[str]:
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="") as handle:
        return next(csv.reader(handle), [])


def read_table(path: Path, dictionary_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """One input file as a DataFrame: CSV values stay text; Parquet keeps its types.

    `dictionary_columns` come back as pandas categoricals (cheap for repeated keys).
    Dates become datetime64 columns.
    """
    # pyarrow here, not at the top: AWS's Spark image (the Spark engine) has none and needs none.
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            table = pq.read_table(
                path, read_dictionary=[c for c in dictionary_columns if c in pq.read_schema(path).names]
            )
        else:
            names = read_header(path)
            types = {
                n: (pa.dictionary(pa.int32(), pa.string()) if n in dictionary_columns else pa.string())
                for n in names
            }
            table = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types=types, null_values=NULL_TOKENS, strings_can_be_null=True
                ),
            )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path.name}: {err}") from err
    # date32/date64 would arrive as python objects; make them timestamps.
    for i, f in enumerate(table.schema):
        if pa.types.is_date(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("ms")))
    return table.to_pandas()


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Writes to a temp name in the same folder, then renames: readers never see half a file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_json(obj: Any, path: Path) -> None:
    atomic.write_json(path, obj, sort_keys=False)
