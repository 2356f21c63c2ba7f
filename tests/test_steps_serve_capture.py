"""Data capture's writer and sink process: lines filed by hour, drops counted when the sink lags,
nothing lost when the worker stops or dies (`pipeline_steps/serve/capture.py`, `capture_sink.py`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import orjson
import pytest

from pipeline_steps.serve import capture
from pipeline_steps.serve.capture_sink import Sink

ENDPOINT, VARIANT = "e", "AllTraffic"
BODY = b"retail,north,12,1200.5,700,true\n"
OUT = b'{"predictions":[{"probability":0.12,"label":0}]}'


def _lines(root: Path) -> list[dict]:
    return list(capture.read_records(capture.capture_files(root, ENDPOINT, VARIANT)))


def _line(event: str, when: str) -> bytes:
    fields = capture.record(
        BODY, "text/csv", OUT, "application/json", event_id=event, inference_id=None, inference_time=when
    )
    return orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)


def test_writer_files_sagemaker_lines_and_renames_them_on_close(tmp_path: Path) -> None:
    writer = capture.CaptureWriter(tmp_path, ENDPOINT, VARIANT, percent=100)
    for n in range(30):  # no event loop here: each line is handed over at once
        writer.offer(BODY, "text/csv", OUT, "application/json", f"event-{n}", "caller" if n % 2 else None)
    writer.close()
    assert (writer.written, writer.dropped) == (30, 0)
    assert not list(tmp_path.rglob(".*.partial"))
    lines = _lines(tmp_path)
    assert [line["eventMetadata"]["eventId"] for line in lines] == [f"event-{n}" for n in range(30)]
    first = lines[0]
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": BODY.decode(),
        "encoding": "CSV",
    }
    assert set(first["eventMetadata"]) == {"eventId", "inferenceTime"}
    assert lines[1]["eventMetadata"]["inferenceId"] == "caller"


def test_sink_files_each_line_under_its_own_hour(tmp_path: Path) -> None:
    sink = Sink(tmp_path, ENDPOINT, VARIANT, roll_seconds=60)
    block = b"".join(
        [
            _line("a", "2026-11-30T10:59:58Z"),
            _line("b", "2026-11-30T10:59:59Z"),
            _line("c", "2026-11-30T11:00:00Z"),
        ]
    )
    sink._write(block, len(block))
    sink._roll()
    base = tmp_path / ENDPOINT / VARIANT / "2026" / "11" / "30"
    before, after = list((base / "10").glob("*.jsonl")), list((base / "11").glob("*.jsonl"))
    assert len(before) == len(after) == 1
    assert [json.loads(x)["eventMetadata"]["eventId"] for x in before[0].read_text().splitlines()] == [
        "a",
        "b",
    ]
    assert [json.loads(x)["eventMetadata"]["eventId"] for x in after[0].read_text().splitlines()] == ["c"]
    assert sink.dropped == 0


def test_a_stalled_sink_costs_drops_never_a_blocked_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "BUFFER_LIMIT", 256 * 1024)
    big = b"x" * 4000  # ~4 KB lines: the 1 MB pipe and the buffer fill after a few hundred
    offered = 1500

    async def traffic() -> capture.CaptureWriter:
        writer = capture.CaptureWriter(tmp_path, ENDPOINT, VARIANT, percent=100)
        os.kill(writer._sink.pid, signal.SIGSTOP)  # the sink stops reading
        try:
            for n in range(offered):
                writer.offer(big, "text/csv", OUT, "application/json", f"event-{n}", None)
                if n % 10 == 9:
                    await asyncio.sleep(0)  # a loop tick: the writer flushes what fits
            assert writer.dropped > 0  # refused and counted while the loop kept running
        finally:
            os.kill(writer._sink.pid, signal.SIGCONT)
        await asyncio.sleep(0.05)
        writer.close()
        return writer

    writer = asyncio.run(traffic())
    assert writer.written + writer.dropped == offered
    assert len(_lines(tmp_path)) == writer.written


def test_sink_ignores_sigterm_and_files_everything_when_its_worker_dies(tmp_path: Path) -> None:
    writer = capture.CaptureWriter(tmp_path, ENDPOINT, VARIANT, percent=100)
    assert os.getpgid(writer._sink.pid) != os.getpgid(0)  # a Ctrl-C to the server's group misses it
    for n in range(10):
        writer.offer(BODY, "text/csv", OUT, "application/json", f"event-{n}", None)
    deadline = time.monotonic() + 20
    while not list(tmp_path.rglob(".*.partial")) and time.monotonic() < deadline:
        time.sleep(0.02)  # the sink is running (its file is open)
    writer._sink.send_signal(signal.SIGTERM)
    os.close(writer._fd)  # the worker is gone: its end of the pipe closes with it
    writer._fd = -1
    assert writer._sink.wait(timeout=20) == 0
    assert len(_lines(tmp_path)) == 10 and not list(tmp_path.rglob(".*.partial"))
