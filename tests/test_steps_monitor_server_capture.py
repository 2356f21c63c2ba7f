"""The monitor reads exactly what the inference server's data capture writes: records written by
`pipeline_steps/serve/capture.py`'s writer (every request and response type the server speaks)
are read back by the monitor's reader with nothing rejected, keys as the server answers them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from serve_helpers import SPEC, make_records

from pipeline_steps.monitor.capture import CaptureReader
from pipeline_steps.serve import payload
from pipeline_steps.serve.capture import CaptureWriter, capture_files
from pipeline_steps.serve.features import FeatureEncoder, csv_columns

ENDPOINT, VARIANT = "merchant-endpoint", "AllTraffic"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _requests(records: list[dict]) -> list[tuple[bytes, str, str]]:
    """(body, content type, Accept) for each input and output type the server speaks."""
    columns = csv_columns(SPEC)
    header_less = "\n".join(",".join(_cell(r.get(c)) for c in columns) for r in records[:3])
    named = [SPEC.entity_id, *columns]
    with_header = (
        ",".join(named) + "\n" + "\n".join(",".join(_cell(r.get(c)) for c in named) for r in records[3:5])
    )
    return [
        (header_less.encode(), "text/csv", "application/json"),
        (with_header.encode(), "text/csv", "text/csv"),
        (json.dumps({"instances": records[5:8]}).encode(), "application/json", "application/json"),
        (json.dumps(records[8]).encode(), "application/json", "application/jsonlines"),
        (
            b"\n".join(json.dumps(r).encode() for r in records[9:12]) + b"\n",
            "application/jsonlines",
            "text/csv",
        ),
    ]


def test_monitor_reads_what_the_server_captures(tmp_path: Path) -> None:
    records = make_records(12, seed=7)
    writer = CaptureWriter(tmp_path, ENDPOINT, VARIANT, percent=100)
    rng = np.random.default_rng(0)
    expected_keys: list[str] = []
    expected_scores: list[float] = []
    for n, (body, content_type, accept) in enumerate(_requests(records)):
        count = len(payload.decode(body, content_type, _encoder()).matrix)
        scores = rng.uniform(0, 1, count)
        event_id = f"event-{n}"
        caller_id = f"caller-{n}" if n % 2 == 0 else None  # the server answers eventId when unset
        answered_id = caller_id or event_id
        out = payload.encode(scores, 0.5, accept, model_version="g/1", inference_id=answered_id)
        writer.offer(body, content_type, out, accept, event_id, caller_id)
        expected_keys += [answered_id] if count == 1 else [f"{answered_id}#{i}" for i in range(count)]
        expected_scores += list(scores)
    writer.close()
    assert writer.written == 5 and writer.dropped == 0

    files = capture_files(tmp_path, ENDPOINT, VARIANT)
    assert files and not list(tmp_path.rglob(".*.partial"))
    rejected: list[dict] = []
    reader = CaptureReader(SPEC, on_reject=rejected.append)
    chunks = list(reader.chunks(files))
    assert rejected == [] and reader.stats.rejected_lines == 0
    assert reader.stats.events == 5 and reader.stats.records == 12
    keys = [k for c in chunks for k in c.keys]
    assert keys == expected_keys
    np.testing.assert_allclose(np.concatenate([c.scores for c in chunks]), expected_scores)
    frame = chunks[0].frame
    column = next(c.name for c in SPEC.columns if SPEC.feature_type(c.name) == "category")
    values = [r.get(column) for r in records]
    assert [None if v != v else v for v in frame[column].tolist()] == values  # NaN for missing

    # The server stamps the capture time; a window around now keeps every record, one before none.
    now = datetime.now(UTC).replace(tzinfo=None)
    inside = CaptureReader(SPEC, window=(now - timedelta(minutes=5), now + timedelta(minutes=5)))
    assert sum(len(c.keys) for c in inside.chunks(files)) == 12
    before = CaptureReader(SPEC, window=(None, now - timedelta(minutes=5)))
    assert list(before.chunks(files)) == [] and before.stats.outside_window == 5


def _encoder() -> FeatureEncoder:
    return FeatureEncoder(SPEC)
