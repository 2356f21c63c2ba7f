"""Request bodies -> the model matrix, predictions -> response bodies.

Pure functions (no sockets, no model), so the HTTP layer stays thin and every rule a client
can break is one check with one message (`RequestError`, answered as JSON with its status).

Accepted inputs (columns: `features.serving_columns(spec)`, the spec's entity columns and
history aggregates plus the entity id and time; the id is echoed back, the time ignored):

* `application/json`: `{"instances": [record, ...]}`, a list of records, or one record.
* `application/jsonlines` (also `application/x-jsonlines`, `application/jsonl`): one record per
  line, blank lines skipped.
* `text/csv`: one record per line; a first line whose cells are all known column names is a
  header (any order, any subset); without one every line has `features.csv_columns(spec)` in
  order.  Empty cells are missing values.

Outputs (`Accept`): `application/json` `{"predictions": [{"probability", "label"[, "id"]
[, "contributions"][, "warnings"]}], "model_version", "inference_id"}`; JSON Lines, one such
prediction per line with `model_version` and `inference_id` in each; `text/csv`, one
`probability,label,model_version,inference_id` line per record, no header, so batch-transform
mini-batches concatenate line by line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from pipeline_steps.serve.errors import RequestError
from pipeline_steps.serve.features import Encoded, FeatureEncoder, csv_columns, serving_columns

JSON = "application/json"
_SPACE = re.compile(r"\s")
JSONL = "application/jsonlines"
CSV = "text/csv"
PARQUET = "application/x-parquet"
JSONL_ALIASES = (
    "application/jsonlines",
    "application/x-jsonlines",
    "application/jsonl",
    "application/x-ndjson",
)
CONTENT_TYPES = (JSON, JSONL, CSV)
INPUT_TYPES = (*CONTENT_TYPES, PARQUET)
__all__ = ["RequestError", "csv_columns", "serving_columns", "media_type", "response_type", "decode"]


# ---- media types -----------------------------------------------------------------------------
def media_type(header: str | None) -> str:
    """`Text/CSV; charset=utf-8` -> `text/csv`; JSON Lines aliases -> `application/jsonlines`."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    return JSONL if kind in JSONL_ALIASES else kind


def charset(header: str | None) -> str:
    for part in (header or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or "utf-8"
    return "utf-8"


def response_type(accept: str | None) -> str:
    """The first supported type in Accept (JSON for none, `*/*` or `application/*`)."""
    if not accept or not accept.strip():
        return JSON
    for item in accept.split(","):
        kind = media_type(item)
        if kind in CONTENT_TYPES:
            return kind
        if kind in ("*/*", "application/*"):
            return JSON
        if kind == "text/*":
            return CSV
    raise RequestError(
        406, f"cannot answer with Accept {accept[:100]!r}; supported: {', '.join(CONTENT_TYPES)}"
    )


# ---- decoding --------------------------------------------------------------------------------
def decode(body: bytes, content_type: str | None, encoder: FeatureEncoder) -> Encoded:
    """A request body -> the validated model matrix (one row per record)."""
    kind = media_type(content_type)
    if kind not in INPUT_TYPES:
        shown = content_type[:100] if content_type else "none"
        raise RequestError(415, f"unsupported Content-Type {shown!r}; send {', '.join(INPUT_TYPES)}")
    if kind == PARQUET:
        return _nonempty(_parquet(body, encoder))
    code = charset(content_type)
    if code.lower().replace("-", "") not in ("utf8", "ascii", "usascii"):
        try:
            body = body.decode(code).encode()
        except (LookupError, UnicodeDecodeError) as err:
            raise RequestError(400, f"body is not valid {code[:40]} text: {err}") from err
    if kind == CSV:
        encoded = _csv(body, encoder)
    else:
        records = _json_records(body) if kind == JSON else _jsonl_records(body)
        encoded = encoder.from_records(records)
    return _nonempty(encoded)


def _nonempty(encoded: Encoded) -> Encoded:
    if not len(encoded.matrix):
        raise RequestError(400, "the request holds no records")
    return encoded


def _parquet(body: bytes, encoder: FeatureEncoder) -> Encoded:
    """A whole Parquet file (batch transform with SplitType None), e.g. a split preprocessing
    wrote: its label and derived columns are ignored (ratios are recomputed), NaN is missing."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(body))
    except (pa.ArrowException, OSError) as err:
        raise RequestError(400, f"body is not a valid Parquet file: {str(err)[:200]}") from None
    spec = encoder.spec
    ignored = {spec.label, *spec.derived_names}
    unknown = [n for n in table.column_names if n not in encoder.columns and n not in ignored]
    if unknown:
        raise RequestError(
            400, f"Parquet columns {unknown[:10]} are not serving columns; known: {encoder.known}"
        )
    columns = {}
    for name in table.column_names:
        if name in encoder.columns:
            column = table[name]
            if pa.types.is_floating(column.type):
                column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
            columns[name] = column
    return encoder.from_records(pa.table(columns).to_pylist())


def _loads(data: bytes | str, where: str = "body") -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        # orjson refuses 1e999, NaN and Infinity outright; the standard parser reads them, so
        # the record and column can be named when the value is refused (`features.py`).
        if "infinity" in str(err) or "NaN" in str(data[:4096]) or "Infinity" in str(data[:4096]):
            try:
                return json.loads(data)
            except (ValueError, RecursionError):
                pass
        raise RequestError(400, f"{where} is not valid JSON: {err}") from None


def _json_records(body: bytes) -> list[Any]:
    doc = _loads(body)
    if isinstance(doc, dict) and "instances" in doc:
        extra = sorted(set(doc) - {"instances"})
        if extra:
            raise RequestError(400, f"unknown top-level keys {extra[:5]} next to 'instances'")
        doc = doc["instances"]
        if not isinstance(doc, list):
            raise RequestError(400, f"'instances' must be a list of records, got {type(doc).__name__}")
    return doc if isinstance(doc, list) else [doc]


def _jsonl_records(body: bytes) -> list[Any]:
    records = []
    for n, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            record = _loads(line, f"JSON Lines line {n}")
            if not isinstance(record, dict):
                got = type(record).__name__
                raise RequestError(
                    400, f"JSON Lines line {n}: expected an object of column: value, got {got}"
                )
            records.append(record)
    return records


def _csv(body: bytes, encoder: FeatureEncoder) -> Encoded:
    try:
        text = body.decode()
    except UnicodeDecodeError as err:
        raise RequestError(400, f"body is not valid utf-8 text: {err}") from None
    if '"' in text or "\r" in text:
        try:
            lines = [line for line in csv.reader(io.StringIO(text, newline=""), strict=True) if line]
        except csv.Error as err:
            raise RequestError(400, f"body is not valid CSV: {err}") from None
        header = [cell.strip() for cell in lines[0]] if lines else []
    else:  # the common case: no quoting, so a split is the same parse, several times faster
        lines = [line.split(",") for line in text.split("\n") if line]
        first = lines[0] if lines else []
        # stripping changes no cell of a first line without white space (the usual data line)
        header = [cell.strip() for cell in first] if _SPACE.search(",".join(first)) else first
    if not lines:
        return encoder.from_cells(encoder.csv_columns, [], 1)
    if encoder.check_header(header):
        return encoder.from_cells(header, lines[1:], 2)
    return encoder.from_cells(encoder.csv_columns, lines, 1)


# ---- encoding --------------------------------------------------------------------------------
def encode(
    probabilities: np.ndarray,
    threshold: float,
    kind: str,
    *,
    model_version: str,
    inference_id: str,
    ids: Sequence[Any] | None = None,
    warnings: Sequence[list[str]] | None = None,
    contributions: list[dict[str, float]] | None = None,
) -> bytes:
    values: list[float] = probabilities.tolist()  # float64 -> Python floats, as float() gives
    labels = [1 if p >= threshold else 0 for p in values]
    if kind == CSV:
        tail = f",{model_version},{inference_id}\n"
        return "".join(f"{p!r},{label}{tail}" for p, label in zip(values, labels, strict=True)).encode()
    predictions: list[dict[str, Any]] = [
        {"probability": p, "label": label} for p, label in zip(values, labels, strict=True)
    ]
    for i, row in enumerate(predictions):
        if ids is not None and ids[i] is not None:
            row["id"] = ids[i]
        if contributions is not None:
            row["contributions"] = contributions[i]
        if warnings is not None and warnings[i]:
            row["warnings"] = warnings[i]
    if kind == JSONL:
        meta = {"model_version": model_version, "inference_id": inference_id}
        return b"".join(orjson.dumps({**row, **meta}) + b"\n" for row in predictions)
    return orjson.dumps(
        {"predictions": predictions, "model_version": model_version, "inference_id": inference_id}
    )


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
