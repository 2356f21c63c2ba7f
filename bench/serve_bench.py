"""Serving benchmark: our server against its anchors, all in the same run.

    .venv/bin/python bench/serve_bench.py [--seconds 8] [--soak 60] [--connections 16] [--rounds 3]
    .venv/bin/python bench/serve_bench.py --capture-only [--rounds 5] [--soak 60]

Needs `wrk` (Debian: `apt-get install wrk`); the tests never do.  Trains a model of the size
the demo registers (200 trees, depth 6) on rows built from the merchant spec, then measures:

1. single-row CSV requests/s and p50/p99 latency (`wrk -t1 -c16 --latency`) for: our server
   (2 workers), the same with data capture of every request, Flask + gunicorn (2 gevent
   workers, XGBoost `inplace_predict`, the stack of AWS's framework containers) and a no-op
   uvicorn app (2 workers: the HTTP limit here); ratios against Flask and the no-op; capture
   off and on alternate for `--rounds` rounds and their ratio (requests/s, and the server's CPU
   time per request, which a busy shared machine moves least) is the median of the rounds';
2. batch rows/s: 1,000-row CSV bodies through `/invocations` against in-process prediction
   of the same rows (the shared transform + XGBoost, as evaluation scores);
3. per-row model time: ONNX Runtime (what the server uses) against XGBoost `inplace_predict`,
   one row, one thread;
4. a soak at saturation (`--soak` seconds) with capture on: errors, the server's memory (RSS
   of the supervisor, its workers and their capture sinks) at start and end, lines filed.

Medians throughout; figures go to BENCHMARKS.md with this command.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_steps.common import transform  # noqa: E402
from pipeline_steps.common.feature_spec import load_spec  # noqa: E402
from pipeline_steps.serve.features import FeatureEncoder, csv_columns  # noqa: E402
from pipeline_steps.serve.predictor import Predictor  # noqa: E402

SPEC_PATH = ROOT / "workflow" / "specs" / "merchant_credit.yaml"
SPEC = load_spec(SPEC_PATH)
PYTHON = sys.executable


def records(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        row: dict = {}
        for name in csv_columns(SPEC):
            kind = SPEC.feature_type(name)
            column = next((c for c in SPEC.columns if c.name == name), None)
            lo = column.min if column and column.min is not None else 0.0
            hi = column.max if column and column.max is not None else 5e4
            if kind == "category":
                row[name] = str(rng.choice(SPEC.column(name).categories))
            elif kind == "boolean":
                row[name] = "true" if rng.random() < 0.5 else "false"
            elif kind == "integer":
                row[name] = int(rng.integers(int(lo), int(min(hi, lo + 800)) + 1))
            elif kind == "number":
                row[name] = round(float(rng.uniform(lo, min(hi, lo + 5e4))), 2)
            else:
                row[name] = f"m-{int(rng.integers(1, 99))}"
        out.append(row)
    return out


def csv_body(rows: list[dict]) -> bytes:
    columns = csv_columns(SPEC)
    return "".join(",".join(str(r[c]) for c in columns) + "\n" for r in rows).encode()


def build_model(directory: Path) -> xgb.Booster:
    rows = records(5000, 0)
    matrix = transform.model_matrix(transform.records_to_frame(rows, SPEC), SPEC)
    labels = (np.random.default_rng(0).random(len(rows)) < 0.2).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "nthread": 2}
    booster = xgb.train(params, xgb.DMatrix(matrix, label=labels), 200)
    booster.save_model(str(directory / "xgboost-model.json"))
    shutil.copy(SPEC_PATH, directory / "feature_spec.yaml")
    meta = {"feature_names": SPEC.model_features, "spec_digest": SPEC.digest}
    (directory / "model_meta.json").write_text(json.dumps(meta))
    booster.set_param({"nthread": 1})
    return booster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, command: list[str], env: dict[str, str], port: int):
        self.port = port
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{command} did not start")

    def tree(self) -> list[psutil.Process]:
        parent = psutil.Process(self.proc.pid)
        return [parent, *parent.children(recursive=True)]

    def rss_mb(self) -> float:
        return sum(p.memory_info().rss for p in self.tree()) / 2**20

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the server: supervisor, workers and capture sinks."""
        return sum(sum(p.cpu_times()[:2]) for p in self.tree())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def ours(model_dir: Path, capture: Path | None = None) -> Process:
    port = free_port()
    env = {
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SERVE_HOST": "127.0.0.1",
        "SERVE_WORKERS": "2",
    }
    if capture:
        env |= {"SERVE_CAPTURE_DIR": str(capture), "SERVE_CAPTURE_PERCENT": "100"}
    return Process([PYTHON, "-m", "pipeline_steps.serve", "serve"], env, port)


def flask(model_dir: Path) -> Process:
    port = free_port()
    gunicorn = str(Path(PYTHON).parent / "gunicorn")
    command = [gunicorn, "-w", "2", "-k", "gevent", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    return Process(
        [*command, "bench.serve_anchor_apps:flask_app()"], {"ANCHOR_MODEL_DIR": str(model_dir)}, port
    )


def noop() -> Process:
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", "bench.serve_anchor_apps:noop", "--workers", "2", "--port", str(port)]
    options = ["--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    return Process([*command, *options], {}, port)


def load(server: Process, body: bytes, seconds: int, connections: int) -> dict[str, float]:
    """wrk against the server, plus the server's CPU time per request (microseconds): the
    figure a busy shared machine moves least."""
    wrk(server.port, body, 1, connections)  # warm-up, not counted (and the capture sinks are up)
    before = server.cpu_seconds()
    result = wrk(server.port, body, seconds, connections)
    result["cpu_us"] = (server.cpu_seconds() - before) / max(result["requests"], 1.0) * 1e6
    return result


def wrk(port: int, body: bytes, seconds: int, connections: int) -> dict[str, float]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian/Ubuntu)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/csv"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/invocations"], capture_output=True, text=True, check=True
    ).stdout
    os.unlink(script.name)

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": latency("50%"),
        "p99": latency("99%"),
        "requests": float(requests.group(1)) if requests else 0.0,
        "errors": float(errors.group(1) if errors else 0)
        + (sum(int(x) for x in socket_errors.groups()) if socket_errors else 0),
    }


def capture_cost(model_dir: Path, folder: Path, body: bytes, requests: int = 60_000) -> dict[str, float]:
    """The worker's CPU per request through the app (no HTTP), capture off and on, and the sink's
    CPU per line: what capture adds, measured by CPU time, which a busy machine moves least."""
    from pipeline_steps.serve.capture import CaptureWriter
    from pipeline_steps.serve.server import build_app
    from pipeline_steps.serve.settings import Settings

    settings = Settings.from_env({"SM_MODEL_DIR": str(model_dir), "SERVE_ACCESS_LOG": "0"})
    app = build_app(settings)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "query_string": b"",
        "headers": [(b"content-type", b"text/csv"), (b"content-length", str(len(body)).encode())],
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        return None

    async def drive(requests: int) -> float:
        start = time.process_time()
        for n in range(requests):
            await app.http(scope, receive, send)
            if n % 8 == 7:
                await asyncio.sleep(0)  # a loop tick: as under 16 connections on 2 workers
        return (time.process_time() - start) / requests * 1e6

    import uvloop

    writer = CaptureWriter(folder, "bench", "AllTraffic", percent=100)
    sink = psutil.Process(writer._sink.pid)
    time.sleep(0.5)  # the sink has started: its start-up is not per line
    before = sum(sink.cpu_times()[:2])
    chunk = 1_000

    async def alternate() -> tuple[list[float], list[float]]:
        # off and on alternate every `chunk` requests, so a burst of load elsewhere hits both alike
        offs, ons = [], []
        app.capture = None
        await drive(500)  # warm-up
        for _ in range(requests // chunk):
            app.capture = None
            offs.append(await drive(chunk))
            app.capture = writer
            ons.append(await drive(chunk))
        app.capture = None
        return offs, ons

    offs, ons = uvloop.run(alternate())
    time.sleep(0.2)  # the sink has filed the last lines
    sink_us = (sum(sink.cpu_times()[:2]) - before) / (len(ons) * chunk) * 1e6
    writer.close()
    return {
        "off_us": statistics.median(offs),
        "on_us": statistics.median(ons),
        "added_us": statistics.median(on - off for on, off in zip(ons, offs, strict=True)),
        "sink_us": sink_us,
    }


def _load() -> str:
    """The machine's load average: the figures below are only comparable at a similar load."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per server")
    parser.add_argument("--soak", type=int, default=60, help="soak duration in seconds (0: skip)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="alternating capture off/on rounds")
    parser.add_argument(
        "--capture-only", action="store_true", help="only capture off/on (and the soak): no anchors"
    )
    args = parser.parse_args()
    print(f"load average at the start (1, 5, 15 min): {_load()}")
    single = csv_body(records(1, 7))
    batch_rows = records(1000, 8)
    batch = csv_body(batch_rows)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        booster = build_model(model_dir)
        servers: dict[str, Callable[[], Process]] = {
            "ours": lambda: ours(model_dir),
            "ours, capture 100%": lambda: ours(model_dir, Path(tmp) / "capture"),
        }
        if not args.capture_only:
            servers |= {"flask+gunicorn gevent": lambda: flask(model_dir), "no-op uvicorn": noop}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        # capture off and on alternate, `--rounds` times: their ratio is taken round by round
        for round_ in range(args.rounds):
            for name, start in servers.items():
                if round_ and name not in ("ours", "ours, capture 100%"):
                    continue
                server = start()
                try:
                    runs[name].append(load(server, single, args.seconds, args.connections))
                finally:
                    server.stop()
        results = {
            name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()
        }
        print(
            f"single-row CSV, wrk -t1 -c{args.connections} -d{args.seconds}s"
            f" (medians; ours and capture over {args.rounds} alternating round(s);"
            f" load average now {_load()}):"
        )
        print(f"  {'server':<24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>11}{'errors':>8}")
        for name, r in results.items():
            print(
                f"  {name:<24}{r['rps']:>10,.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['cpu_us']:>11.1f}"
                f"{r['errors']:>8.0f}"
            )
        ours_rps = results["ours"]["rps"]
        if not args.capture_only:
            flask_rps = results["flask+gunicorn gevent"]["rps"]
            print(f"  ours / flask   = {ours_rps / flask_rps:.2f}x (target >= 3)")
            print(f"  ours / no-op   = {ours_rps / results['no-op uvicorn']['rps']:.2f}x (target >= 0.25)")
        pairs = list(zip(runs["ours, capture 100%"], runs["ours"], strict=True))
        throughput = [on["rps"] / off["rps"] for on, off in pairs]
        cpu = [on["cpu_us"] / off["cpu_us"] for on, off in pairs]
        print(
            f"  capture on/off = {statistics.median(throughput):.2f}x requests/s "
            f"(rounds: {', '.join(f'{x:.2f}' for x in throughput)}), "
            f"{statistics.median(cpu):.2f}x CPU per request (rounds: {', '.join(f'{x:.2f}' for x in cpu)})"
        )
        cost = capture_cost(model_dir, Path(tmp) / "capture-cost", single)
        added = cost["added_us"] + cost["sink_us"]
        print(
            f"  capture cost, in-process CPU per request through the app (off and on alternating every"
            f" 1,000 requests): off {cost['off_us']:.1f} us, on {cost['on_us']:.1f} us, median"
            f" difference {cost['added_us']:+.1f} us, plus the sink {cost['sink_us']:.2f} us/line: "
            f"{added:+.1f} us = {added / results['ours']['cpu_us']:.1%} of the server's CPU per request"
            f" under wrk ({results['ours']['cpu_us']:.0f} us)"
        )
        if args.capture_only:
            soak(args, model_dir, Path(tmp), single)
            print(f"load average at the end: {_load()}")
            return

        # batch rows/s through the server vs in-process prediction of the same rows
        server = ours(model_dir)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

            def call() -> None:
                conn.request(
                    "POST", "/invocations", batch, {"Content-Type": "text/csv", "Accept": "text/csv"}
                )
                response = conn.getresponse()
                assert response.status == 200, response.read()
                response.read()

            served = median_seconds(call, args.repeats)
        finally:
            server.stop()

        def in_process() -> None:
            frame = transform.records_to_frame(batch_rows, SPEC)
            booster.inplace_predict(transform.model_matrix(frame, SPEC))

        local = median_seconds(in_process, args.repeats)
        matrix = FeatureEncoder(SPEC).from_records(batch_rows).matrix
        model_only = median_seconds(lambda: booster.inplace_predict(matrix), args.repeats)
        print("batch of 1,000 rows (CSV through /invocations):")
        print(f"  server     {1000 / served:>10,.0f} rows/s")
        print(f"  in-process {1000 / local:>10,.0f} rows/s (shared transform + XGBoost inplace_predict)")
        print(
            f"  ratio      {local / served:.2f}x (target >= 0.5); XGBoost alone on the ready matrix:"
            f" {1000 / model_only:,.0f} rows/s"
        )

        # per-row model time
        predictor = Predictor(booster, SPEC.model_features, mode="onnx")
        row = matrix[:1]
        onnx_us = median_seconds(lambda: predictor.predict(row), 2000) * 1e6
        xgb_us = median_seconds(lambda: booster.inplace_predict(row), 2000) * 1e6
        print(
            f"per-row model time, one thread: ONNX Runtime {onnx_us:.1f} us, XGBoost inplace_predict "
            f"{xgb_us:.1f} us: {onnx_us / xgb_us:.3f}x (target <= 0.1)"
        )
        print(f"  max |ONNX - XGBoost| on the probe rows: {predictor.max_difference:.1e}")

        soak(args, model_dir, Path(tmp), single)
        print(f"load average at the end: {_load()}")


def soak(args: argparse.Namespace, model_dir: Path, tmp: Path, body: bytes) -> None:
    """`--soak` seconds at saturation with capture on: errors, memory, and every line filed."""
    if not args.soak:
        return
    folder = tmp / "soak-capture"
    server = ours(model_dir, folder)
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:  # the server's memory every 5 s while wrk runs
        while not done.wait(5.0):
            samples.append(server.rss_mb())

    try:
        wrk(server.port, body, 2, args.connections)  # warm-up: arenas, caches, capture sinks
        start_rss = server.rss_mb()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = wrk(server.port, body, args.soak, args.connections)
        done.set()
        sampler.join()
        end_rss = server.rss_mb()
    finally:
        server.stop()
    lines = sum(path.read_bytes().count(b"\n") for path in folder.rglob("*.jsonl"))
    middle = samples[len(samples) // 2] if samples else end_rss
    print(
        f"soak {args.soak}s at saturation (capture on): {result['requests']:,.0f} requests, "
        f"{result['rps']:,.0f} req/s, errors {result['errors']:.0f}, p99 {result['p99']:.2f} ms, "
        f"RSS {start_rss:.0f} MB -> {middle:.0f} MB (half-way) -> {end_rss:.0f} MB; "
        f"{lines:,} capture lines filed (every request, the warm-up's included)"
    )


if __name__ == "__main__":
    main()
