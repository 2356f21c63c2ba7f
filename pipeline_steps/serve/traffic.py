"""A worker's traffic in one log line a minute, instead of one line per request.

At thousands of requests a second a line per request costs about as much CPU as scoring (BENCHMARKS.md)
and buries what an operator looks for; refused and failed requests are still logged one by one
(`app.py`), and `SERVE_ACCESS_LOG=1` brings the per-request line back.
"""

from __future__ import annotations

import os
import time

SUMMARY_S = 60.0


class Traffic:
    """Counters since the last summary; `add` is called once per request on the event loop."""

    __slots__ = ("since", "requests", "rows", "client_errors", "server_errors", "gone", "seconds", "slowest")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.since = time.monotonic()
        self.requests = 0
        self.rows = 0
        self.client_errors = 0
        self.server_errors = 0
        self.gone = 0  # 499: the client left before the answer
        self.seconds = 0.0
        self.slowest = 0.0

    def add(self, status: int, seconds: float) -> None:
        self.requests += 1
        self.seconds += seconds
        if seconds > self.slowest:
            self.slowest = seconds
        if status >= 400:
            if status == 499:
                self.gone += 1
            elif status >= 500:
                self.server_errors += 1
            else:
                self.client_errors += 1

    def summary(self) -> str | None:
        """The line since the last one (None without traffic); then counting starts afresh."""
        if not self.requests:
            self.reset()
            return None
        period = time.monotonic() - self.since
        line = (
            f"worker {os.getpid()}: {self.requests} requests in {period:.0f}s ({self.rows} rows scored; "
            f"{self.client_errors} refused 4xx, {self.server_errors} failed 5xx, {self.gone} client gone), "
            f"latency mean {self.seconds / self.requests * 1000:.2f} ms, max {self.slowest * 1000:.2f} ms"
        )
        self.reset()
        return line
