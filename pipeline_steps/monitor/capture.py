"""Reads SageMaker data-capture JSON Lines into chunks of records, counting every line it
cannot use with the reason (never a crash, nothing skipped silently).

One capture line is one invocation:
`{"captureData": {"endpointInput": {"observedContentType", "mode": "INPUT", "data",
"encoding": "CSV"|"JSON"|"BASE64"}, "endpointOutput": {... "mode": "OUTPUT" ...}},
"eventMetadata": {"eventId", "inferenceId" (when the caller set one), "inferenceTime"},
"eventVersion": "0"}`.  An invocation may carry several records (CSV lines or JSON
instances); the output then carries one prediction per record.  Record keys for the label
join: the inferenceId, else the eventId, and `<id>#<i>` for the i-th record of a
several-record invocation (its ground truth then lists one label per record).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import FeatureSpec

CHUNK_ROWS = 50_000


def input_columns(spec: FeatureSpec) -> list[str]:
    """A header-less CSV record's columns, in order (the serving contract): entity columns,
    then history aggregates."""
    return [c.name for c in spec.columns] + spec.aggregate_names


@dataclass
class Chunk:
    keys: list[str]
    times: np.ndarray  # datetime64[s]
    frame: pd.DataFrame  # one row per record, the input columns as text or JSON values
    scores: np.ndarray  # P(positive) the endpoint answered


@dataclass
class CaptureStats:
    lines: int = 0
    events: int = 0
    records: int = 0
    files: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> lines
    outside_window: int = 0
    absent_columns: Counter = field(default_factory=Counter)  # expected column -> records without it
    extra_columns: Counter = field(default_factory=Counter)  # unknown column -> records with it
    short_rows: int = 0  # header-less CSV records with fewer cells than the contract
    long_rows: int = 0  # ... with more

    @property
    def rejected_lines(self) -> int:
        return sum(self.rejected.values())


class CaptureError(ValueError):
    """One line cannot be used; the message is the reason recorded."""


class CaptureReader:
    def __init__(
        self,
        spec: FeatureSpec,
        *,
        window: tuple[datetime | None, datetime | None] = (None, None),
        on_reject: Callable[[dict[str, Any]], None] | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.spec = spec
        self.columns = input_columns(spec)
        self.known = set(self.columns) | {spec.entity_id, spec.entity_time}
        self.window = window
        self.on_reject = on_reject or (lambda _record: None)
        self.chunk_rows = chunk_rows
        self.stats = CaptureStats()

    # ---- files -----------------------------------------------------------------------------
    def chunks(self, files: Iterable[Path]) -> Iterator[Chunk]:
        keys: list[str] = []
        times: list[datetime] = []
        csv_rows: list[str] = []
        csv_index: list[int] = []
        records: list[dict[str, Any]] = []
        record_index: list[int] = []
        scores: list[float] = []

        def flush() -> Chunk:
            frame = self._frame(csv_rows, csv_index, records, record_index, len(keys))
            chunk = Chunk(
                list(keys), np.array(times, dtype="datetime64[s]"), frame, np.array(scores, dtype=np.float64)
            )
            for buffer in (keys, times, csv_rows, csv_index, records, record_index, scores):
                buffer.clear()
            return chunk

        for path in files:
            self.stats.files += 1
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    self.stats.lines += 1
                    try:
                        event = self._event(line)
                    except CaptureError as err:
                        self._reject(path, number, line, str(err))
                        continue
                    if event is None:
                        continue
                    key, when, rows, outputs = event
                    self.stats.events += 1
                    self.stats.records += len(outputs)
                    for i, row in enumerate(rows):
                        position = len(keys)
                        keys.append(key if len(rows) == 1 else f"{key}#{i}")
                        times.append(when)
                        scores.append(outputs[i])
                        if isinstance(row, str):
                            csv_rows.append(row)
                            csv_index.append(position)
                        else:
                            records.append(row)
                            record_index.append(position)
                    if len(keys) >= self.chunk_rows:
                        yield flush()
        if keys:
            yield flush()

    def _reject(self, path: Path, number: int, line: str, reason: str) -> None:
        self.stats.rejected[reason.split(":")[0]] += 1
        self.on_reject({"file": path.name, "line": number, "reason": reason, "text": line.rstrip("\n")})

    # ---- one line ----------------------------------------------------------------------------
    def _event(self, line: str) -> tuple[str, datetime, list[Any], list[float]] | None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError as err:
            raise CaptureError(f"not JSON: {err.msg} at column {err.colno}") from None
        if not isinstance(event, dict) or not isinstance(event.get("captureData"), dict):
            raise CaptureError("not a capture record: no captureData object")
        meta = event.get("eventMetadata")
        if not isinstance(meta, dict):
            raise CaptureError("not a capture record: no eventMetadata object")
        key = meta.get("inferenceId") or meta.get("eventId")
        if not isinstance(key, str) or not key:
            raise CaptureError("no eventId: eventMetadata has neither inferenceId nor eventId")
        when = _time(meta.get("inferenceTime"))
        start, end = self.window
        if (start and when < start) or (end and when >= end):
            self.stats.outside_window += 1
            return None
        data = event["captureData"]
        inputs = self._rows(*_payload(data.get("endpointInput"), "endpointInput"))
        outputs = _scores(*_payload(data.get("endpointOutput"), "endpointOutput"))
        if len(outputs) != len(inputs):
            raise CaptureError(
                f"output count mismatch: {len(inputs)} input records but {len(outputs)} predictions"
            )
        return key, when, inputs, outputs

    def _rows(self, text: str, content_type: str) -> list[Any]:
        if "json" in content_type:
            try:
                if _is_json_lines(content_type):
                    rows = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
                else:
                    body = json.loads(text)
                    rows = (
                        body.get("instances", body)
                        if isinstance(body, dict) and "instances" in body
                        else body
                    )
            except json.JSONDecodeError as err:
                raise CaptureError(f"input is not JSON: {err.msg}") from None
            rows = rows if isinstance(rows, list) else [rows]
            if not rows or not all(isinstance(r, dict) for r in rows):
                raise CaptureError("input records are not JSON objects")
            for r in rows:
                self._check_named(r.keys())
            return rows
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise CaptureError("input has no records")
        first = [c.strip() for c in next(csv.reader([lines[0]]))]
        if set(first) <= self.known and len(first) > 1:  # a header: columns by name
            self._check_named(first)
            rows = [next(csv.reader([ln])) for ln in lines[1:]]
            if not rows:
                raise CaptureError("input has no records: a header only")
            for cells in rows:
                if len(cells) != len(first):
                    raise CaptureError(
                        f"schema change: a CSV record has {len(cells)} cells, its header {len(first)}"
                    )
            return [dict(zip(first, cells, strict=True)) for cells in rows]
        out = []
        width = len(self.columns)
        for ln in lines:
            cells = ln.count(",") + 1
            if cells != width and '"' in ln:
                cells = len(next(csv.reader([ln])))
            if cells != width:
                if cells < width:
                    self.stats.short_rows += 1
                else:
                    self.stats.long_rows += 1
                raise CaptureError(f"schema change: a CSV record has {cells} cells, the contract {width}")
            out.append(ln if '"' not in ln else dict(zip(self.columns, next(csv.reader([ln])), strict=True)))
        return out

    def _check_named(self, names: Iterable[str]) -> None:
        present = set(names)
        for extra in present - self.known:
            self.stats.extra_columns[extra] += 1
        for absent in set(self.columns) - present:
            self.stats.absent_columns[absent] += 1

    # ---- chunk -> frame ------------------------------------------------------------------------
    def _frame(
        self,
        csv_rows: list[str],
        csv_index: list[int],
        records: list[dict[str, Any]],
        record_index: list[int],
        size: int,
    ) -> pd.DataFrame:
        parts = []
        if csv_rows:
            frame = pd.read_csv(
                io.StringIO("\n".join(csv_rows)),
                header=None,
                names=self.columns,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
            )
            frame.index = csv_index
            parts.append(frame)
        if records:
            frame = pd.DataFrame.from_records(records, columns=self.columns)
            frame.index = record_index
            parts.append(frame)
        if not parts:
            return pd.DataFrame(columns=self.columns, index=range(size))
        return (pd.concat(parts) if len(parts) > 1 else parts[0]).sort_index()


def _payload(part: Any, name: str) -> tuple[str, str]:
    if not isinstance(part, dict) or "data" not in part:
        raise CaptureError(f"no {name}: captureData.{name}.data is missing")
    data, encoding = part["data"], str(part.get("encoding", "")).upper()
    content_type = str(part.get("observedContentType", "")).lower()
    if not isinstance(data, str):
        raise CaptureError(f"bad {name}: data is not a string")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CaptureError(f"bad {name}: BASE64 data does not decode to UTF-8 text") from None
    elif encoding not in ("CSV", "JSON"):
        raise CaptureError(f"bad {name}: encoding {part.get('encoding')!r} is not CSV, JSON or BASE64")
    if encoding == "JSON" and "json" not in content_type:
        content_type = "application/json"
    return data, content_type


def _scores(text: str, content_type: str) -> list[float]:
    try:
        if _is_json_lines(content_type):
            # JSON Lines: one prediction object per line
            values = [float(json.loads(ln)["probability"]) for ln in text.splitlines() if ln.strip()]
        elif "json" in content_type or text.lstrip().startswith(("{", "[")):
            body = json.loads(text)
            items = body.get("predictions", body) if isinstance(body, dict) else body
            items = items if isinstance(items, list) else [items]
            values = [float(i["probability"] if isinstance(i, dict) else i) for i in items]
        else:
            values = [float(ln.split(",")[0]) for ln in text.splitlines() if ln.strip()]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise CaptureError("bad endpointOutput: predictions are not probabilities") from None
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise CaptureError("bad endpointOutput: predictions are not probabilities in [0, 1]")
    return values


def _is_json_lines(content_type: str) -> bool:
    """The JSON Lines media types the server accepts and answers (captured as BASE64)."""
    kind = content_type.split(";", 1)[0].strip()
    return kind in ("application/jsonlines", "application/x-jsonlines", "application/jsonl")


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise CaptureError("no inferenceTime: eventMetadata.inferenceTime is missing")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CaptureError(f"bad inferenceTime: {value!r} is not ISO 8601") from None
    # naive UTC throughout (a time without an offset is taken as UTC, as SageMaker writes it)
    return when if when.tzinfo is None else when.astimezone(UTC).replace(tzinfo=None)
