"""The data-capture sink: one small process per server worker that files its capture lines.

    python -m pipeline_steps.serve.capture_sink <root> <endpoint> <variant> <roll seconds>

reads whole JSON Lines from stdin (a pipe from the worker's `capture.CaptureWriter`) and
appends them to `<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/.<mm>-<ss>-<mmm>-<uuid>.jsonl.partial`,
renamed without the dot and suffix when the file rolls: every `roll seconds`, when the hour
turns, and at the end of input.  The hour folder is the line's own inferenceTime hour, so a
line stamped 10:59:59 lands under 10/ even when it arrives after 11:00.

It ignores SIGTERM and SIGINT: a graceful stop reaches it as the end of its input, once the
worker has handed over every line, so nothing captured is lost.  If the worker is killed, the
pipe closes all the same and the sink still renames what it has.  A line it cannot write is
dropped, counted and logged (at most once a minute); the exit code is then 1.  Standard
library only, so it starts quickly.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("serve.capture")
# Every capture line ends with this after its inferenceTime (`capture.record` keys, in order),
# so the sink reads a line's hour without parsing it.
LINE_END = b'"},"eventVersion":"0"}\n'
TIME_LENGTH = len("2026-11-30T21:40:00Z")
READ_BYTES = 1 << 20
# How often the sink looks for lines: one read and one write per batch.
POLL_S = 0.05
LOG_EVERY_S = 60.0


class Sink:
    def __init__(self, root: Path, endpoint: str, variant: str, roll_seconds: float):
        self.base = root / endpoint / variant
        self.roll_seconds = roll_seconds
        self.fd = -1
        self.partial = self.final = Path()
        self.hour = ""  # "yyyy/mm/dd/hh" of the open file
        self.opened = 0.0
        self.dropped = 0
        self._logged = 0.0

    def run(self, source: int) -> int:
        # The sink polls: it never waits on the pipe, so the worker's writes never wake it (a
        # wake-up per write made the woken sink preempt the worker at saturation).  One buffer
        # for the life of the process: a fresh 1 MB object per read costs a page fault per 4 KB.
        os.set_blocking(source, False)
        buffer = bytearray(READ_BYTES)
        reader = io.FileIO(source, closefd=False)
        filled = 0  # bytes of an incomplete last line, kept at the buffer's start
        while True:
            until_roll = self._until_roll()
            time.sleep(POLL_S if until_roll is None else min(POLL_S, until_roll))
            while True:
                if filled == len(buffer):  # a line longer than the buffer: make room
                    buffer.extend(bytes(len(buffer)))
                with memoryview(buffer) as view:
                    got = reader.readinto(view[filled:])
                if got is None:  # nothing more for now
                    break
                if not got:  # end of input: the worker closed the pipe
                    if filled:
                        self._drop(1, "an incomplete last line")
                    self._roll()
                    return 1 if self.dropped else 0
                end = filled + got
                cut = buffer.rfind(b"\n", 0, end) + 1
                if cut:
                    self._write(buffer, cut)
                filled = end - cut
                if filled and cut:
                    buffer[:filled] = buffer[cut:end]
            self._roll_if_due()

    def _until_roll(self) -> float | None:
        if self.fd < 0:
            return None
        return max(0.0, min(self.opened + self.roll_seconds, _next_hour(self.opened)) - time.time())

    def _write(self, data: bytes | bytearray, end: int) -> None:
        """Appends the whole lines data[:end], each to the file of its own hour (one write when
        they share it, the usual case)."""
        first = _hour(data[: data.find(b"\n", 0, end) + 1])
        last = _hour(data[data.rfind(b"\n", 0, end - 1) + 1 : end])
        with memoryview(data) as view:
            if first == last:
                self._append(first, view[:end])
                return
            start = 0
            while start < end:  # the hour turned inside this block: split it by hour
                hour = _hour(data[start : data.find(b"\n", start, end) + 1])
                stop = start
                while stop < end:
                    line_end = data.find(b"\n", stop, end) + 1
                    if _hour(data[stop:line_end]) != hour:
                        break
                    stop = line_end
                self._append(hour, view[start:stop])
                start = stop

    def _append(self, hour: str, block: memoryview) -> None:
        if self.fd >= 0 and hour != self.hour:
            self._roll()
        try:
            if self.fd < 0:
                self._open(hour)
            rest = block
            while rest:
                rest = rest[os.write(self.fd, rest) :]
        except OSError as err:
            self._drop(bytes(block).count(b"\n"), f"cannot write under {self.base}: {err}")
            self._roll()

    def _open(self, hour: str) -> None:
        now = datetime.now(UTC)
        folder = self.base / hour
        folder.mkdir(parents=True, exist_ok=True)
        self.final = folder / file_name(now)
        self.partial = folder / f".{self.final.name}.partial"
        self.fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.hour, self.opened = hour, now.timestamp()

    def _roll_if_due(self) -> None:
        if self.fd >= 0 and (self._until_roll() or 0.0) <= 0:
            self._roll()

    def _roll(self) -> None:
        """Closes the open file and renames it into place, where readers look."""
        if self.fd < 0:
            return
        try:
            os.close(self.fd)
            os.replace(self.partial, self.final)
        except OSError as err:
            self._drop(0, f"cannot finish {self.final}: {err}")
        self.fd = -1

    def _drop(self, lines: int, why: str) -> None:
        self.dropped += lines
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_S or not self._logged:
            log.error("data capture: %s (%d line(s) dropped so far)", why, self.dropped)
            self._logged = now


def file_name(when: datetime) -> str:
    """<mm>-<ss>-<mmm>-<uuid>.jsonl, the shape of SageMaker's capture file names."""
    return f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"


def _hour(line: bytes | bytearray) -> str:
    """yyyy/mm/dd/hh of a capture line's inferenceTime (the sink's clock for a foreign line)."""
    if line.endswith(LINE_END):
        stamp = line[-len(LINE_END) - TIME_LENGTH : -len(LINE_END)].decode("ascii", "replace")
        if stamp[4:5] == "-" and stamp[10:11] == "T":
            return f"{stamp[0:4]}/{stamp[5:7]}/{stamp[8:10]}/{stamp[11:13]}"
    return time.strftime("%Y/%m/%d/%H", time.gmtime())


def _next_hour(timestamp: float) -> float:
    return (int(timestamp) // 3600 + 1) * 3600


def main(argv: list[str] | None = None) -> int:
    root, endpoint, variant, roll = argv if argv is not None else sys.argv[1:]
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the end of input is the stop signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
    )
    return Sink(Path(root), endpoint, variant, float(roll)).run(sys.stdin.fileno())


if __name__ == "__main__":
    sys.exit(main())
