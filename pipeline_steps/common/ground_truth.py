"""Late ground-truth labels in SageMaker Model Monitor's merge format: one line -> (event id,
outcomes).  Standard library only, so the monitor step and the label-intake Lambda (which
validates label files as they arrive) apply exactly the same rules.

`{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "..."},
"eventVersion": "0"}`; `data` is one outcome per record (comma separated for an invocation
that scored several), `encoding` CSV, JSON or BASE64.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

NEGATIVE_TEXT = {"0", "false", "no", "n", "f"}
POSITIVE_TEXT = {"1", "true", "yes", "y", "t"}


class LabelError(ValueError):
    """A ground-truth line cannot be used; the text before the first colon is the reason's kind."""


def label_value(raw: Any, positive_labels: Iterable[Any]) -> float:
    """One outcome -> 1.0 (a positive) or 0.0; anything else is an error."""
    text = str(raw).strip().lower()
    positives = {str(v).strip().lower() for v in positive_labels}
    if text in positives or text in POSITIVE_TEXT:
        return 1.0
    if text in NEGATIVE_TEXT:
        return 0.0
    raise LabelError(f"label {raw!r} is not an outcome: expected one of {sorted(positives)} or 0")


def parse_line(line: str, positive_labels: Iterable[Any]) -> tuple[str, list[float]]:
    """One ground-truth line -> (event id, labels in record order)."""
    positives = list(positive_labels)
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise LabelError(f"not JSON: {err.msg}") from None
    if not isinstance(record, dict):
        raise LabelError("not a ground-truth record: not a JSON object")
    meta, truth = record.get("eventMetadata"), record.get("groundTruthData")
    if not isinstance(meta, dict) or not isinstance(meta.get("eventId"), str) or not meta["eventId"]:
        raise LabelError("no eventId: eventMetadata.eventId is missing or empty")
    if not isinstance(truth, dict) or "data" not in truth:
        raise LabelError("no groundTruthData: groundTruthData.data is missing")
    data, encoding = truth["data"], str(truth.get("encoding", "CSV")).upper()
    if encoding == "BASE64":
        try:
            data = base64.b64decode(str(data), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise LabelError("bad groundTruthData: BASE64 data does not decode") from None
    elif encoding == "JSON":
        try:
            data = json.loads(data) if isinstance(data, str) else data
        except json.JSONDecodeError:
            raise LabelError("bad groundTruthData: JSON data does not parse") from None
    elif encoding != "CSV":
        raise LabelError(f"bad groundTruthData: encoding {encoding!r} is not CSV, JSON or BASE64")
    values = (
        data if isinstance(data, list) else [v for v in str(data).replace("\n", ",").split(",") if v.strip()]
    )
    if not values:
        raise LabelError("bad groundTruthData: no label")
    return meta["eventId"], [label_value(v, positives) for v in values]
