"""Data capture in SageMaker's own format, written off the request path.

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

Locally the capture root is the local S3 folder of `s3://<capture bucket>/datacapture`.  A file
is written under a hidden `.partial` name and renamed when it rolls (every `roll_seconds`, at
the hour boundary and at shutdown), so a reader globbing `*.jsonl` only ever sees whole files.
"""

from __future__ import annotations

import base64
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger("serve.capture")
CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json",)
EVENT_VERSION = "0"
# Records waiting for the writer; beyond this the newest are dropped (and counted), as
# SageMaker stops capturing rather than slow the endpoint down.
QUEUE_LIMIT = 20_000
DRAIN_LIMIT = 1_000  # requests the writer takes per wake-up


def hour_folder(root: Path, endpoint: str, variant: str, when: datetime) -> Path:
    """<root>/<endpoint>/<variant>/yyyy/mm/dd/hh (UTC)."""
    return root / endpoint / variant / when.strftime("%Y/%m/%d/%H")


def file_name(when: datetime) -> str:
    """<mm>-<ss>-<mmm>-<uuid>.jsonl, the shape of SageMaker's capture file names."""
    return f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"


def encoding_for(content_type: str) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in CSV_TYPES:
        return "CSV"
    if kind in JSON_TYPES:
        return "JSON"
    return "BASE64"


def section(data: bytes, content_type: str, mode: str) -> dict[str, str]:
    encoding = encoding_for(content_type)
    if encoding == "BASE64":
        text = base64.b64encode(data).decode("ascii")
    else:
        text = data.decode("utf-8", errors="replace")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def record(
    input_data: bytes,
    input_type: str,
    output_data: bytes,
    output_type: str,
    *,
    event_id: str,
    inference_id: str | None,
    inference_time: datetime,
) -> dict[str, Any]:
    """One capture line, as SageMaker writes it."""
    metadata = {"eventId": event_id}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = inference_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "captureData": {
            "endpointInput": section(input_data, input_type, "INPUT"),
            "endpointOutput": section(output_data, output_type, "OUTPUT"),
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
    """Samples requests and appends their capture lines from a background thread."""

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
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

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
        """Queues one request for capture (the caller has sampled it); never blocks."""
        try:
            self._queue.put_nowait(
                (input_data, input_type, output_data, output_type, event_id, inference_id, time.time())
            )
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is queued, renames the open file into place, stops the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self.dropped:
            log.warning("data capture dropped %d record(s): the writer could not keep up", self.dropped)

    # ---- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        handle: IO[bytes] | None = None
        partial = final = None
        opened = 0.0
        hour = ""
        # Drained in batches: one wake-up of this thread (and one flush) serves every request
        # queued meanwhile, so the event loop's workers keep the interpreter lock.
        pending: deque[tuple[Any, ...] | None] = deque()
        while True:
            idle = False
            item: tuple[Any, ...] | None = None
            if not pending:
                try:
                    pending.append(self._queue.get(timeout=0.5))
                    while len(pending) < DRAIN_LIMIT:
                        pending.append(self._queue.get_nowait())
                except queue.Empty:
                    idle = not pending
            if pending:
                item = pending.popleft()
            now = time.time()
            stop = item is None and not idle  # None queued by close()
            if handle is not None and (stop or now - opened >= self.roll_seconds or _hour(now) != hour):
                handle.close()
                os.replace(partial, final)  # type: ignore[arg-type]
                handle = None
            if stop:
                return
            if item is None:
                continue
            when = datetime.fromtimestamp(item[6], UTC)
            line = orjson.dumps(
                record(
                    item[0],
                    item[1],
                    item[2],
                    item[3],
                    event_id=item[4],
                    inference_id=item[5],
                    inference_time=when,
                )
            )
            try:
                if handle is None:
                    folder = hour_folder(self.root, self.endpoint, self.variant, when)
                    folder.mkdir(parents=True, exist_ok=True)
                    final = folder / file_name(when)
                    partial = folder / f".{final.name}.partial"
                    handle = partial.open("ab")
                    opened, hour = now, _hour(item[6])
                handle.write(line + b"\n")
                self.written += 1
                if not pending and self._queue.empty():
                    handle.flush()
            except OSError as err:
                self.dropped += 1
                log.error("data capture: cannot write under %s: %s", self.root, err)


def _hour(timestamp: float) -> str:
    return time.strftime("%Y%m%d%H", time.gmtime(timestamp))
