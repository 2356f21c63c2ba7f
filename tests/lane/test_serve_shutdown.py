"""The serving container's shutdown, end to end: SIGTERM to a real server process on a real port.

Run in the background lane (tests/lane/README.md): each test starts and stops a server process,
about 4 s apiece, that the main test process need not wait for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import time

import pytest
from serve_helpers import ServerProcess, expected, make_records

from pipeline_steps.serve import capture


def test_sigterm_finishes_in_flight_request_then_exits_zero(model_dir, booster, tmp_path):
    proc = ServerProcess(model_dir, SERVE_CAPTURE_DIR=str(tmp_path))
    proc.wait_ready()
    records = make_records(20, seed=13)
    body = json.dumps(records).encode()
    sock = socket.create_connection(("127.0.0.1", proc.port), timeout=20)
    # a first request on this keep-alive connection proves the server has accepted it
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while not first.endswith(b'{"status": "ok"}'):
        first += sock.recv(4096)
    head = (
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body[:10])
    time.sleep(0.3)  # the server has the request line and is waiting for the body
    start = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):  # no new connections while draining
        socket.create_connection(("127.0.0.1", proc.port), timeout=2).close()
    sock.sendall(body[10:])
    reply = b""
    while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < int(
        reply.lower().partition(b"content-length: ")[2].split(b"\r\n")[0] or 10**9
    ):
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200")
    head_out, _, body_out = reply.partition(b"\r\n\r\n")
    assert b"connection: close" in head_out.lower()  # header names are case-insensitive
    got = [p["probability"] for p in json.loads(body_out)["predictions"]]
    assert got == pytest.approx(expected(records, booster), abs=1e-6)
    code, out = proc.wait()
    assert code == 0, out
    assert time.monotonic() - start < 30
    assert "received SIGTERM" in out
    # no line per request by default: the worker's traffic summary, flushed at shutdown
    summary = r"worker \d+: \d+ requests in \d+s \(20 rows scored; 0 refused 4xx, 0 failed 5xx"
    assert re.search(summary, out), out
    # the in-flight request's capture line is filed (file renamed into place) before the exit
    captured = list(capture.read_records(capture.capture_files(tmp_path, "local")))
    assert len(captured) == 1 and not list(tmp_path.rglob(".*.partial"))
    assert capture.decode_data(captured[0]["captureData"]["endpointOutput"]) == body_out


def test_sigterm_when_idle_exits_zero_quickly(model_dir):
    proc = ServerProcess(model_dir, SERVE_ACCESS_LOG="1")  # the per-request line, on request
    proc.wait_ready()
    start = time.monotonic()
    code, out = proc.stop()
    assert code == 0, out
    assert time.monotonic() - start < 15  # SageMaker allows 30 s; typically well under 1 s
    lines = [line for line in out.splitlines() if "GET /ping 200" in line]
    assert lines and "ms" in lines[-1]  # one line per request: method, path, status, duration


def test_sigterm_between_loading_and_serving_is_not_lost(model_dir):
    """A SIGTERM that reaches a worker after it has loaded the model but before uvicorn has
    installed its own handlers (here held open for half a second) still stops the server.  It was
    lost there, and the server hung until SIGKILL: seen with two workers stopped right after
    the first answered /ping."""
    held = (
        "import sys, time, uvicorn\n"
        "run = uvicorn.Server.run\n"
        "def held(self, *a, **k):\n"
        "    time.sleep(0.5)\n"
        "    return run(self, *a, **k)\n"
        "uvicorn.Server.run = held\n"
        "from pipeline_steps.serve.server import main\n"
        "sys.exit(main(['serve']))\n"
    )
    proc = ServerProcess(model_dir, python=["-c", held])
    deadline = time.monotonic() + 90
    while "listening on" not in proc.log and time.monotonic() < deadline:
        assert proc.proc.poll() is None, proc.log
        time.sleep(0.05)
    proc.proc.send_signal(signal.SIGTERM)  # the worker is in the held half second
    code, out = proc.wait(timeout=15)  # SIGKILL after 15 s: -9
    if code != 0:  # the supervisor was killed: its worker too, not left behind
        for pid in re.findall(r"worker (\d+): model", out):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    assert code == 0, f"the server ignored a SIGTERM sent before uvicorn started (exit {code}):\n{out}"
