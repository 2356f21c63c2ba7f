"""Data capture in SageMaker's own format, encoded on the request path and filed by a sink process.

What SageMaker writes for an endpoint with data capture on, and what this server writes
locally (the monitoring step reads either the same way):

    <capture root>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl

one JSON object per line:

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<the caller's, when it set one>",
                       "inferenceTime": "2026-11-30T21:40:00Z"},
     "eventVersion": "0"}

`encoding` is CSV for `text/csv`, JSON for `application/json` (SageMaker's default
CaptureContentTypeHeader), BASE64 for anything else (JSON Lines included).  The server returns
`inference_id` = the caller's id, else the eventId, so late labels can be keyed by it.

Why a process: a writer thread shares the worker's interpreter lock with the event loop, and
at saturation the hand-offs cost a quarter of the throughput (BENCHMARKS.md).  Here the event
loop only encodes each line (one orjson call, a few microseconds) and writes the lines of
10 ms to a pipe in one non-blocking `os.write`; `capture_sink.py`, a process per worker with
its own interpreter that polls the pipe (so a write never wakes it), files them.  A sink
that falls behind fills the pipe, then a bounded buffer, then lines are dropped and counted:
capture never slows a response.

Locally the capture root is the local S3 folder of `s3://<capture bucket>/datacapture`.  A file
is written under a hidden `.partial` name and renamed when it rolls (every `roll_seconds`, at
the hour boundary and at shutdown), so a reader globbing `*.jsonl` only ever sees whole files.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import functools
import logging
import os
import random
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline_steps.serve.capture_sink import LINE_END, file_name

__all__ = ["LINE_END", "CaptureWriter", "capture_files", "decode_data", "file_name", "hour_folder", "record"]

log = logging.getLogger("serve.capture")
CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json",)
EVENT_VERSION = "0"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PIPE_BYTES = 1 << 20  # the sink's pipe (Linux allows up to 1 MB unprivileged)
# Lines waiting in the worker while the pipe is full; beyond this they are dropped (and
# counted), as SageMaker stops capturing rather than slow the endpoint down.
BUFFER_LIMIT = 16 << 20
RETRY_S = 0.01  # a full pipe is retried this soon
# Lines are handed to the sink this often (or at once past FLUSH_BYTES): one write system call
# for every few dozen requests at saturation.
FLUSH_S = 0.01
FLUSH_BYTES = 256 * 1024
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def hour_folder(root: Path, endpoint: str, variant: str, when: datetime) -> Path:
    """<root>/<endpoint>/<variant>/yyyy/mm/dd/hh (UTC)."""
    return root / endpoint / variant / when.strftime("%Y/%m/%d/%H")


@functools.lru_cache(maxsize=256)  # a handful of content types; parsed once each
def encoding_for(content_type: str) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in CSV_TYPES:
        return "CSV"
    if kind in JSON_TYPES:
        return "JSON"
    return "BASE64"


def _text(data: bytes, encoding: str) -> str:
    return base64.b64encode(data).decode("ascii") if encoding == "BASE64" else data.decode("utf-8", "replace")


def section(data: bytes, content_type: str, mode: str) -> dict[str, str]:
    encoding = encoding_for(content_type)
    return {
        "observedContentType": content_type,
        "mode": mode,
        "data": _text(data, encoding),
        "encoding": encoding,
    }


def capture_time(when: datetime) -> str:
    """inferenceTime as SageMaker writes it (UTC, whole seconds)."""
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def record(
    input_data: bytes,
    input_type: str,
    output_data: bytes,
    output_type: str,
    *,
    event_id: str,
    inference_id: str | None,
    inference_time: datetime | str,
) -> dict[str, Any]:
    """One capture line, as SageMaker writes it (`inference_time` a datetime or `capture_time`'s text)."""
    metadata = {"eventId": event_id}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = (
        inference_time if isinstance(inference_time, str) else capture_time(inference_time)
    )
    given, answered = encoding_for(input_type), encoding_for(output_type)
    # `section` inlined: this runs on the event loop for every captured request
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": input_type,
                "mode": "INPUT",
                "data": _text(input_data, given),
                "encoding": given,
            },
            "endpointOutput": {
                "observedContentType": output_type,
                "mode": "OUTPUT",
                "data": _text(output_data, answered),
                "encoding": answered,
            },
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }


def decode_data(part: dict[str, str]) -> bytes:
    """The payload of an endpointInput/endpointOutput section, as the bytes that were sent."""
    if part["encoding"] == "BASE64":
        return base64.b64decode(part["data"])
    return part["data"].encode()


def capture_files(root: Path, endpoint: str, variant: str = "AllTraffic") -> list[Path]:
    """Every finished capture file of an endpoint variant, oldest first."""
    base = root / endpoint / variant
    return sorted(base.glob("*/*/*/*/*.jsonl")) if base.is_dir() else []


def read_records(files: list[Path]) -> Iterator[dict[str, Any]]:
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    yield orjson.loads(line)


class CaptureWriter:
    """Samples requests and hands their capture lines to a sink process (`capture_sink.py`).

    `offer` is called on the event loop's thread (or where no loop runs, e.g. a script): it
    encodes the line and buffers it; every FLUSH_S the lines go to the sink's pipe in one
    non-blocking write.  `written` counts lines handed to the sink, `dropped` lines refused
    because the sink lagged (or was gone); the sink logs its own write failures.
    """

    def __init__(
        self,
        root: Path,
        endpoint: str,
        variant: str,
        *,
        percent: float,
        roll_seconds: float = 60.0,
    ):
        self.root = Path(root)
        self.endpoint = endpoint
        self.variant = variant
        self.percent = percent
        self.roll_seconds = roll_seconds
        self.dropped = 0
        self.written = 0
        self._lines: list[bytes] = []
        self._buffered = 0
        self._flush_due = False
        self._closed = False
        self._second = -1
        self._stamp = ""
        read, self._fd = os.pipe()
        with contextlib.suppress(OSError):  # a smaller pipe only means earlier drops
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PACKAGE_ROOT), environment.get("PYTHONPATH")])
        )
        arguments = [str(self.root), endpoint, variant, str(roll_seconds)]
        try:
            self._sink = subprocess.Popen(
                [sys.executable, "-m", "pipeline_steps.serve.capture_sink", *arguments],
                stdin=read,
                env=environment,
                # its own process group: a Ctrl-C or a group SIGTERM reaches the worker, whose
                # graceful stop then ends the sink's input; the sink ignores both signals too
                process_group=0,
            )
        finally:
            os.close(read)
        os.set_blocking(self._fd, False)

    def sampled(self) -> bool:
        return self.percent >= 100 or random.random() * 100 < self.percent

    def offer(
        self,
        input_data: bytes,
        input_type: str,
        output_data: bytes,
        output_type: str,
        event_id: str,
        inference_id: str | None,
    ) -> None:
        """Captures one request (the caller has sampled it); never blocks."""
        second = int(time.time())
        if second != self._second:  # one strftime a second, not one a request
            self._second, self._stamp = second, time.strftime(TIME_FORMAT, time.gmtime(second))
        line = orjson.dumps(
            record(
                input_data,
                input_type,
                output_data,
                output_type,
                event_id=event_id,
                inference_id=inference_id,
                inference_time=self._stamp,
            ),
            option=orjson.OPT_APPEND_NEWLINE,
        )
        if self._closed or (self._buffered and self._buffered + len(line) > BUFFER_LIMIT):
            self.dropped += 1
            return
        self._lines.append(line)
        self._buffered += len(line)
        if not self._flush_due:
            self._flush_due = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_S, self._flush)
            except RuntimeError:  # no event loop: hand it over now
                self._flush(wait=True)
        elif self._buffered >= FLUSH_BYTES:
            self._flush()

    def _flush(self, wait: bool = False) -> None:
        """Writes the buffered lines to the pipe; what does not fit waits for the next try."""
        self._flush_due = False
        if self._closed or not self._lines:
            return
        data = self._lines[0] if len(self._lines) == 1 else b"".join(self._lines)
        sent = self._send(data, 10.0 if wait else 0.0)
        if sent < 0:
            return
        self.written += data.count(b"\n", 0, sent)
        if sent == len(data):
            self._lines.clear()
            self._buffered = 0
            return
        rest = data[sent:]
        self._lines, self._buffered = [rest], len(rest)
        if not wait:  # the sink lags: try again shortly (without a loop: at the next offer)
            self._flush_due = True
            asyncio.get_running_loop().call_later(RETRY_S, self._flush)

    def _send(self, data: bytes, wait: float) -> int:
        """Bytes written to the pipe within `wait` seconds; -1 when the sink is gone."""
        deadline = time.monotonic() + wait
        sent = 0
        view = memoryview(data)
        while sent < len(data):
            try:
                sent += os.write(self._fd, view[sent:])
                continue
            except BlockingIOError:
                pass
            except OSError as err:  # the sink has exited: nothing more can be captured
                self._lost(err)
                return -1
            left = deadline - time.monotonic()
            if left <= 0:
                break
            select.select([], [self._fd], [], left)
        return sent

    def _lost(self, err: OSError) -> None:
        lines = sum(line.count(b"\n") for line in self._lines)
        self.dropped += lines
        self._lines.clear()
        self._buffered = 0
        if not self._closed:
            log.error("data capture: the sink process stopped (%s, exit %s)", err, self._sink.poll())
            self._closed = True

    def close(self, timeout: float = 10.0) -> None:
        """Hands over what is buffered, then lets the sink write it, rename its file and exit."""
        if not self._closed:
            self._flush_due = False
            data = b"".join(self._lines)
            sent = self._send(data, timeout) if data else 0
            if sent >= 0:
                self.written += data.count(b"\n", 0, sent)
                self.dropped += data.count(b"\n", sent)
            self._lines.clear()
            self._closed = True
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        try:
            code = self._sink.wait(timeout)
        except subprocess.TimeoutExpired:
            self._sink.kill()
            code = self._sink.wait()
        if code != 0:
            log.error("data capture: the sink process exited with %s; see its messages above", code)
        if self.dropped:
            log.warning("data capture dropped %d record(s): the sink could not keep up", self.dropped)
