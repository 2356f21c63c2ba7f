"""Request bodies -> validated records, predictions -> response bodies.

Everything here is pure (no sockets, no model), so the HTTP layer stays thin and every rule a
client can break is one function with one message.  A rule broken raises `RequestError`,
which the server turns into a JSON error with the status it carries.

Accepted inputs (the columns a request may carry are `serving_columns(spec)`: the spec's
entity columns and history aggregates, plus the entity id and time, which are ignored):

* `application/json`: `{"instances": [record, ...]}`, a list of records, or one record.
  A record is an object whose keys are column names.  Missing columns are missing values.
* `text/csv`: one record per line.  The first line is a header when every cell in it is a
  known column name; then the columns may come in any order and any subset.  Without a
  header every line has exactly the columns of `csv_columns(spec)`, in that order.  A first
  line that names some known columns and some unknown ones is a header with an error.  Batch
  transform splits files by line, so only the first mini-batch would see a header: give batch
  files without one.  An empty cell is a missing value.

Outputs: `application/json` (`{"predictions": [{"probability": p, "label": 0|1}, ...]}`) or
`text/csv` (one `probability,label` line per record, no header, so mini-batches concatenate).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.common.transform import _FALSE, _TRUE

JSON = "application/json"
CSV = "text/csv"
CONTENT_TYPES = (JSON, CSV)


class RequestError(ValueError):
    """A client error; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ---- columns ---------------------------------------------------------------------------------
def csv_columns(spec: FeatureSpec) -> list[str]:
    """The columns of a header-less CSV line, in order: the entity columns, then aggregates."""
    return [c.name for c in spec.columns] + spec.aggregate_names


def serving_columns(spec: FeatureSpec) -> list[str]:
    """Every column a request may name: the model's raw inputs plus the entity id and time."""
    return [spec.entity_id, spec.entity_time] + csv_columns(spec)


def _column_types(spec: FeatureSpec) -> dict[str, str]:
    return {name: spec.feature_type(name) for name in serving_columns(spec)}


# ---- media types -----------------------------------------------------------------------------
def media_type(header: str | None) -> str:
    """`Text/CSV; charset=utf-8` -> `text/csv`; missing -> ''."""
    return (header or "").split(";", 1)[0].strip().lower()


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
    raise RequestError(406, f"cannot answer with Accept {accept!r}; supported: {', '.join(CONTENT_TYPES)}")


# ---- decoding --------------------------------------------------------------------------------
def decode(body: bytes, content_type: str | None, spec: FeatureSpec) -> list[dict[str, Any]]:
    """A request body -> validated, normalised records (one dict per row)."""
    kind = media_type(content_type)
    if kind not in CONTENT_TYPES:
        shown = content_type if content_type else "none"
        raise RequestError(415, f"unsupported Content-Type {shown!r}; send {' or '.join(CONTENT_TYPES)}")
    try:
        text = body.decode(charset(content_type))
    except (LookupError, UnicodeDecodeError) as err:
        raise RequestError(400, f"body is not valid {charset(content_type)} text: {err}") from err
    rows = _json_rows(text) if kind == JSON else _csv_rows(text, spec)
    if not rows:
        raise RequestError(400, "the request holds no records")
    types = _column_types(spec)
    return [_validate(row, i, types, spec) for i, row in enumerate(rows)]


def _json_rows(text: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise RequestError(400, f"body is not valid JSON: {err.msg} at {where}") from err
    if isinstance(doc, dict) and "instances" in doc:
        extra = sorted(set(doc) - {"instances"})
        if extra:
            raise RequestError(400, f"unknown top-level keys {extra} next to 'instances'")
        doc = doc["instances"]
        if not isinstance(doc, list):
            raise RequestError(400, f"'instances' must be a list of records, got {type(doc).__name__}")
    rows = doc if isinstance(doc, list) else [doc]
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            got = type(row).__name__
            raise RequestError(400, f"record {i}: expected an object of column: value, got {got}")
    return rows


def _csv_rows(text: str, spec: FeatureSpec) -> list[dict[str, Any]]:
    try:
        lines = [line for line in csv.reader(io.StringIO(text, newline=""), strict=True) if line]
    except csv.Error as err:
        raise RequestError(400, f"body is not valid CSV: {err}") from err
    if not lines:
        return []
    known = set(serving_columns(spec))
    header = [cell.strip() for cell in lines[0]]
    if all(cell in known for cell in header):
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise RequestError(400, f"CSV header names columns twice: {dupes}")
        columns, body, first = header, lines[1:], 2
    elif any(cell in known for cell in header):
        unknown = [c for c in header if c not in known]
        raise RequestError(
            400, f"CSV header has unknown columns {unknown}; known columns: {serving_columns(spec)}"
        )
    else:
        columns, body, first = csv_columns(spec), lines, 1
    rows = []
    for n, line in enumerate(body):
        if len(line) != len(columns):
            where = "header" if columns is header else f"header-less order {columns}"
            raise RequestError(
                400, f"CSV line {n + first}: {len(line)} values, expected {len(columns)} (the {where})"
            )
        rows.append({c: (v if v.strip() != "" else None) for c, v in zip(columns, line)})
    return rows


# ---- validation ------------------------------------------------------------------------------
def _validate(row: dict[str, Any], i: int, types: dict[str, str], spec: FeatureSpec) -> dict[str, Any]:
    if not row:
        raise RequestError(400, f"record {i}: has no columns")
    unknown = [k for k in row if k not in types]
    if unknown:
        derived = [k for k in unknown if k in spec.derived_names]
        if derived:
            raise RequestError(
                400,
                f"record {i}: column {derived[0]!r} is derived by the server from its inputs; do not send it",
            )
        raise RequestError(400, f"record {i}: unknown column {unknown[0]!r}; known columns: {list(types)}")
    return {name: _value(value, types[name], i, name) for name, value in row.items()}


def _value(value: Any, kind: str, i: int, name: str) -> Any:
    if value is None:
        return None

    def wrong(expected: str) -> RequestError:
        return RequestError(400, f"record {i}: column {name!r} expects {expected}, got {value!r}")

    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise wrong(f"a {kind}")
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise wrong(f"a {kind}") from None
        else:
            number = float(value)
        if math.isnan(number):
            return None
        if kind == "integer" and math.isfinite(number) and not number.is_integer():
            raise wrong("an integer")
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise wrong("a boolean (true/false, 1/0, yes/no)")
    if kind == "category":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise wrong("a category name")
        return value
    # string or date: identifiers, ignored by the model
    if isinstance(value, (dict, list)):
        raise wrong("a single value")
    return value


# ---- encoding --------------------------------------------------------------------------------
def encode(probabilities: list[float], threshold: float, kind: str) -> bytes:
    labels = [1 if p >= threshold else 0 for p in probabilities]
    if kind == CSV:
        return "".join(f"{p!r},{label}\n" for p, label in zip(probabilities, labels)).encode()
    predictions = [{"probability": p, "label": label} for p, label in zip(probabilities, labels)]
    return json.dumps({"predictions": predictions}).encode()


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
