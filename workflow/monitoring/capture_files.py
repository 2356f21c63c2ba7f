"""Writes data-capture and ground-truth files in SageMaker's formats (the layout an endpoint
with data capture writes), for tests, benchmarks and the demo's replayed traffic.

Capture: `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`; ground truth:
`<prefix>/<endpoint>/yyyy/mm/dd/hh/<file>.jsonl` (the hour the labels arrived).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.atomic import write_text
from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.monitor.capture import input_columns


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def csv_records(frame: pd.DataFrame, spec: FeatureSpec) -> list[str]:
    """Header-less CSV lines in the serving contract's column order."""
    columns = input_columns(spec)
    values = frame.reindex(columns=columns).astype(object).to_numpy()
    return [",".join(_cell(v) for v in row) for row in values]


def capture_line(
    csv_record: str, probability: float, *, event_id: str, inference_id: str | None, when: datetime
) -> str:
    label = 1 if probability >= 0.5 else 0
    meta: dict[str, Any] = {
        "eventId": event_id,
        "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    if inference_id:
        meta["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": csv_record,
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "text/csv; charset=utf-8",
                    "mode": "OUTPUT",
                    "data": f"{probability:.6f},{label}",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": meta,
            "eventVersion": "0",
        }
    )


def hour_path(prefix: Path, when: datetime) -> Path:
    return prefix / f"{when:%Y/%m/%d/%H}"


def write_capture(
    prefix: Path,
    records: Sequence[str],
    probabilities: Sequence[float],
    *,
    start: datetime,
    per_hour: int,
    ids: Sequence[str] | None = None,
) -> list[str]:
    """One file per hour, `per_hour` records each, from `start`; returns the inference ids."""
    ids = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in records]
    for first in range(0, len(records), per_hour):
        hour = start + timedelta(hours=first // per_hour)
        lines = [
            capture_line(
                records[i],
                float(probabilities[i]),
                event_id=str(uuid.uuid5(uuid.NAMESPACE_OID, ids[i])),
                inference_id=ids[i],
                when=hour + timedelta(seconds=(i - first) * 3600 // per_hour),
            )
            for i in range(first, min(first + per_hour, len(records)))
        ]
        write_text(
            hour_path(prefix, hour) / f"capture-{hour:%Y%m%d%H}-{first:08d}.jsonl", "\n".join(lines) + "\n"
        )
    return ids


def ground_truth_line(event_id: str, label: Any) -> str:
    return json.dumps(
        {
            "groundTruthData": {"data": str(label), "encoding": "CSV"},
            "eventMetadata": {"eventId": event_id},
            "eventVersion": "0",
        }
    )


def write_ground_truth(
    prefix: Path, labels: Iterable[tuple[str, Any]], *, arrived: datetime, name: str = "labels"
) -> Path:
    path = hour_path(prefix, arrived) / f"{name}-{arrived:%Y%m%d%H%M%S}.jsonl"
    write_text(path, "\n".join(ground_truth_line(i, v) for i, v in labels) + "\n")
    return path
