"""Part files written block by block: row groups appended to temporary files, which are renamed
into place together once everything is written, so a reader never sees a partial data set."""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

import pyarrow as pa

# Parquet settings per column, chosen by measurement (BENCHMARKS.md, "Faster generation").
# Values that rarely repeat: a dictionary only costs time to build and is thrown away; as floats,
# random amounts barely compress (snappy saved 28 % of their bytes for 60 % of the write time).
UNIQUE_VALUES = {"card_volume", "amount_due", "amount_paid", "monthly_revenue", "requested_amount"}
# Monthly counts: delta-coded integers are smaller than dictionary + snappy, and quicker to write.
DELTA_CODED = {"txn_count", "chargebacks", "days_late"}


def part_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}.{fmt}"


class PartWriters:
    """One writer per part file (`part-<first + p>.<fmt>` for part p), each writing to a
    temporary name in the folder; `close` returns the temporary paths for `publish`."""

    def __init__(self, folder: str, fmt: str, parts: int, first: int = 0) -> None:
        os.makedirs(folder, exist_ok=True)
        self.fmt = fmt
        self.finals = [os.path.join(folder, part_name(first + p, fmt)) for p in range(parts)]
        self.tmps = [
            os.path.join(folder, f".{part_name(first + p, fmt)}.{os.getpid()}.tmp") for p in range(parts)
        ]
        self.writers: list[Any] = [None] * parts

    def write(self, tables: list[pa.Table]) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        for p, table in enumerate(tables):
            if self.fmt == "csv":
                table = _decoded(table)
            if self.writers[p] is None:
                if self.fmt == "parquet":
                    options = parquet_options(table.schema)
                    self.writers[p] = pq.ParquetWriter(self.tmps[p], table.schema, **options)
                else:
                    self.writers[p] = pacsv.CSVWriter(self.tmps[p], table.schema)
            self.writers[p].write_table(table)

    def close(self) -> list[tuple[str, str]]:
        """(temporary path, final path) of each file written."""
        for writer in self.writers:
            if writer is not None:
                writer.close()
        return [(t, f) for t, f, w in zip(self.tmps, self.finals, self.writers, strict=True) if w is not None]

    def discard(self) -> None:
        for writer in self.writers:
            if writer is not None:
                with contextlib.suppress(OSError, pa.ArrowException):
                    writer.close()
        discard([(t, f) for t, f in zip(self.tmps, self.finals, strict=True)])


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """ParquetWriter options for these columns (see UNIQUE_VALUES and DELTA_CODED)."""
    delta = [f.name for f in schema if f.name in DELTA_CODED and pa.types.is_integer(f.type)]
    raw = [f.name for f in schema if f.name in UNIQUE_VALUES and pa.types.is_floating(f.type)]
    # dates (the history's months) come in sorted runs: snappy shrinks them at half a dictionary's cost
    plain = set(UNIQUE_VALUES) | set(delta) | {f.name for f in schema if pa.types.is_date(f.type)}
    return {
        "use_dictionary": [f.name for f in schema if f.name not in plain],
        "column_encoding": dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
        "compression": {f.name: "none" if f.name in raw or f.name in delta else "snappy" for f in schema},
        # min/max of dictionary-coded ids (merchant_id) serve no reader and cost a tenth of the write
        "write_statistics": [f.name for f in schema if not pa.types.is_dictionary(f.type)],
        # without the Arrow schema, a dictionary-coded column reads back as plain strings
        "store_schema": not any(pa.types.is_dictionary(f.type) for f in schema),
    }


def _decoded(table: pa.Table) -> pa.Table:
    """Dictionary-coded columns as their values (CSV has no dictionaries)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table


def discard(files: list[tuple[str, str]]) -> None:
    for tmp, _ in files:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish(folder: str, fmt: str, files: list[tuple[str, str]]) -> list[str]:
    """Renames the temporary files into place and removes part files of an earlier, larger
    data set in the same folder (they would be read with the new ones)."""
    finals = [f for _, f in files]
    keep = {os.path.basename(f) for f in finals}
    pattern = re.compile(r"part-\d{5}\." + re.escape(fmt) + "$")
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if pattern.match(name) and name not in keep:
                os.unlink(os.path.join(folder, name))
    for tmp, final in files:
        os.replace(tmp, final)
    return finals
