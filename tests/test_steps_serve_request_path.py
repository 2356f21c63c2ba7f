"""The cheap request path's parts: event ids, one socket write per response, the traffic summary."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

from pipeline_steps.serve.event_ids import event_id
from pipeline_steps.serve.http_protocol import CoalescingTransport
from pipeline_steps.serve.traffic import Traffic


def test_event_ids_are_unique_version_4_uuids_and_differ_in_a_forked_child():
    ids = [event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child's next id must not be the parent's next id (workers are forked)
        os.write(write, event_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    assert uuid.UUID(child).version == 4 and child != event_id()


class RecordingTransport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_a_response_written_in_parts_leaves_in_one_write_in_order():
    async def scenario() -> list[tuple[str, Any]]:
        inner = RecordingTransport()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"ok")
        assert inner.calls == []  # held until the loop's next pass
        await asyncio.sleep(0)
        transport.write(b"second")  # a later response: its own write, at once when complete
        transport.flush()
        assert inner.calls[-1] == ("write", b"second")
        await asyncio.sleep(0)  # nothing left for the loop's pass
        transport.write(b"last words")
        transport.close()  # close flushes first, then closes
        transport.write(b"after close")
        await asyncio.sleep(0)  # dropped: the connection is closing
        assert transport.get_extra_info("peername") == "info:peername"  # the rest is the transport's
        return inner.calls

    assert asyncio.run(scenario()) == [
        ("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
        ("write", b"second"),
        ("write", b"last words"),
        ("close", None),
    ]


def test_abort_drops_what_is_pending():
    async def scenario() -> list[tuple[str, Any]]:
        inner = RecordingTransport()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"partial")
        transport.abort()
        await asyncio.sleep(0)
        return inner.calls

    assert asyncio.run(scenario()) == [("abort", None)]


def test_traffic_summary_counts_by_outcome_then_starts_afresh():
    traffic = Traffic()
    assert traffic.summary() is None  # no traffic, no line
    for status, seconds in [(200, 0.001), (200, 0.003), (400, 0.002), (413, 0.001), (500, 0.004), (499, 0.0)]:
        traffic.add(status, seconds)
    traffic.rows += 7
    line = traffic.summary()
    assert line is not None
    counts = "6 requests in 0s (7 rows scored; 2 refused 4xx, 1 failed 5xx, 1 client gone)"
    assert line.startswith(f"worker {os.getpid()}: {counts}")
    assert "latency mean 1.83 ms, max 4.00 ms" in line
    assert traffic.summary() is None
