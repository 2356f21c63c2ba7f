"""The inference server for SageMaker hosting and batch transform (standard library HTTP).

Routes: `GET /ping`, `POST /invocations`, `GET /execution-parameters`.  A request's records go
through `transform.records_to_frame` and `transform.model_matrix`, the functions training and
evaluation use, then to the booster: one transform, so no train/serve skew.

Each connection has its own thread (`ThreadingHTTPServer`); predictions are bounded by a
semaphore of `workers` slots and `/ping` never waits on it.  SIGTERM (or SIGINT) stops accepting
connections, lets in-flight requests finish (at most `shutdown_timeout` seconds, below
SageMaker's 30 s before SIGKILL) and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipeline_steps.common import transform
from pipeline_steps.common.model_io import (
    LoadedModel,
    ModelError,
    load_model_dir,
    model_threshold,
    resolve_model_dir,
)
from pipeline_steps.serve import payload
from pipeline_steps.serve.payload import RequestError

log = logging.getLogger("serve")
MB = 1024 * 1024
# A too-large body is read and thrown away up to this many times the limit, so the client
# sees the 413 instead of a reset connection; beyond it the connection is simply closed.
_DRAIN_FACTOR = 4
# Objectives whose prediction is a probability.
PROBABILITY_OBJECTIVES = ("binary:logistic", "reg:logistic")


class ConfigError(ValueError):
    """A setting (argument or environment variable) is invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    model_dir: Path
    threshold: float | None  # None: the threshold training chose (model_meta.json)
    max_payload_mb: int
    workers: int
    shutdown_timeout: float

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> Settings:
        env = dict(os.environ if env is None else env)
        root = Path(env.get("OPT_ML_ROOT", "/opt/ml"))
        default_workers = env.get("SAGEMAKER_MODEL_SERVER_WORKERS") or str(os.cpu_count() or 1)
        values = {
            "host": env.get("SERVE_HOST", "0.0.0.0"),
            "port": _number(env, "SAGEMAKER_BIND_TO_PORT", "8080", int, 1, 65535),
            "model_dir": Path(env.get("SM_MODEL_DIR") or root / "model"),
            "threshold": _number(env, "DECISION_THRESHOLD", "0.5", float, 0.0, 1.0)
            if env.get("DECISION_THRESHOLD")
            else None,
            "max_payload_mb": _number(env, "SERVE_MAX_PAYLOAD_MB", "6", int, 1, 100),
            "workers": _number(env, "SERVE_WORKERS", default_workers, int, 1, 256),
            "shutdown_timeout": _number(env, "SERVE_SHUTDOWN_TIMEOUT_S", "25", float, 0.0, 28.0),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _number(env: dict[str, str], name: str, default: str, kind: type, lo: float, hi: float):
    raw = env.get(name) or default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is outside {lo}..{hi}")
    return value


class App:
    """The model plus the settings; the part of the server that is not HTTP."""

    def __init__(self, model: LoadedModel, settings: Settings):
        self.model = model
        self.settings = settings
        self.slots = threading.BoundedSemaphore(settings.workers)

    def execution_parameters(self) -> dict:
        return {
            "MaxConcurrentTransforms": self.settings.workers,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": self.settings.max_payload_mb,
        }

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str, int]:
        kind = payload.response_type(accept)
        records = payload.decode(body, content_type, self.model.spec)
        with self.slots:
            frame = transform.records_to_frame(records, self.model.spec)
            matrix = transform.model_matrix(frame, self.model.spec)
            probabilities = self.model.predict_matrix(matrix) if len(matrix) else []
        body = payload.encode([float(p) for p in probabilities], self.settings.threshold, kind)
        return body, kind, len(records)


class Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold the process at exit
    request_queue_size = 128

    def __init__(self, address, app: App):
        super().__init__(address, Handler)
        self.app = app
        self.draining = False
        self._inflight = 0
        self._idle = threading.Condition()

    def begin(self) -> None:
        with self._idle:
            self._inflight += 1

    def end(self) -> None:
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> int:
        """Waits until no request is in flight; returns how many still are at the deadline."""
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)
            return self._inflight


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as SageMaker's front end expects
    server_version = "pipeline-steps-serve"
    sys_version = ""
    timeout = 60  # seconds a connection may sit silent (idle keep-alive or a stalled body)
    server: Server

    ROUTES = {"/ping": "GET", "/execution-parameters": "GET", "/invocations": "POST"}

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_POST

    # ---- one request ---------------------------------------------------------------------
    def _dispatch(self) -> None:
        start = time.perf_counter()
        self.server.begin()
        self._status, self._note, self._extra_headers = 500, "", {}
        try:
            self._route()
        except RequestError as err:
            self._error(err.status, err.message)
        except Exception:  # noqa: BLE001: the client gets a short message, the log the traceback
            log.exception("internal error on %s %s", self.command, self.path)
            self._error(500, "internal error while handling the request; see the server log")
        finally:
            self.server.end()
            log.info(
                "%s %s %d %.1fms%s",
                self.command,
                self.path,
                self._status,
                (time.perf_counter() - start) * 1000,
                self._note,
            )

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        method = self.ROUTES.get(path)
        if method is None:
            raise RequestError(404, f"no route {path!r}; routes: {sorted(self.ROUTES)}")
        if self.command != method:
            self._extra_headers = {"Allow": method}
            raise RequestError(405, f"{path} takes {method}, not {self.command}")
        app = self.server.app
        if path == "/ping":
            self._send(200, b'{"status": "ok"}', payload.JSON)
        elif path == "/execution-parameters":
            self._send(200, json.dumps(app.execution_parameters()).encode(), payload.JSON)
        else:
            body = self._read_body(app.settings.max_payload_mb)
            out, kind, rows = app.invoke(body, self.headers.get("Content-Type"), self.headers.get("Accept"))
            self._note = f" rows={rows}"
            self._send(200, out, kind)

    def _read_body(self, max_mb: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise RequestError(411, "chunked bodies are not accepted; send Content-Length")
        raw = self.headers.get("Content-Length")
        if raw is None:
            self.close_connection = True
            raise RequestError(411, "Content-Length is required")
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise RequestError(400, f"Content-Length {raw!r} is not a byte count") from None
        limit = max_mb * MB
        if length > limit:
            self.close_connection = True
            if length <= _DRAIN_FACTOR * limit:
                self._drain(length)
            raise RequestError(
                413, f"payload of {length} bytes exceeds the {max_mb} MB limit; send fewer records at a time"
            )
        return self.rfile.read(length)

    def _drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 * MB))
            if not chunk:
                break
            remaining -= len(chunk)

    # ---- responses -----------------------------------------------------------------------
    def _error(self, status: int, message: str) -> None:
        self._send(status, payload.error_body(message), payload.JSON)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self._status = status
        if self.server.draining:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in self._extra_headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method) as JSON, not HTML."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        try:
            self.send_response(code, text)
            self.send_header("Content-Type", payload.JSON)
            body = payload.error_body(text)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        finally:
            log.info("%s %s %d %s", self.command or "-", getattr(self, "path", "-"), code, text)

    def log_request(self, code="-", size="-") -> None:
        """One line per request is written by `_dispatch`, with its duration."""

    def log_message(self, format: str, *args) -> None:
        log.info("%s " + format, self.address_string(), *args)


# ---- process -------------------------------------------------------------------------------
def run(settings: Settings) -> int:
    stop = threading.Event()
    holder: dict[str, Server] = {}

    def on_signal(signum, _frame) -> None:
        if stop.is_set():
            return
        stop.set()
        log.info("received %s: stop accepting, finish in-flight requests", signal.Signals(signum).name)
        if "server" in holder:
            holder["server"].draining = True
            threading.Thread(target=holder["server"].shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = time.perf_counter()
    try:
        # a directory SageMaker extracted, or one holding model.tar.gz (the local runner)
        directory = resolve_model_dir(settings.model_dir, Path(tempfile.mkdtemp(prefix="model-")))
        model = load_model_dir(directory)
        _check_objective(model)
    except ModelError as err:
        log.error("cannot serve: %s", err)
        return 1
    if settings.threshold is None:
        settings = dataclasses.replace(settings, threshold=model_threshold(model.meta))
    _limit_threads(model, settings.workers)
    log.info(
        "model loaded from %s in %.2fs (%d features, threshold %s)",
        settings.model_dir,
        time.perf_counter() - started,
        len(model.spec.model_features),
        settings.threshold,
    )
    if stop.is_set():
        return 0
    try:
        server = Server((settings.host, settings.port), App(model, settings))
    except OSError as err:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, err.strerror)
        return 1
    holder["server"] = server
    log.info("listening on %s:%d (workers %d)", settings.host, server.server_address[1], settings.workers)
    if stop.is_set():  # a signal between loading and listening
        server.draining = True
        threading.Thread(target=server.shutdown, daemon=True).start()
    server.serve_forever(poll_interval=0.2)
    server.server_close()  # closes the listening socket: new connections are refused
    time.sleep(0.2)  # lets accepted connections whose request is already sent begin it
    left = server.wait_idle(settings.shutdown_timeout)
    if left:
        log.warning("%d request(s) still running after %.0fs; exiting", left, settings.shutdown_timeout)
    # A repeated SIGTERM while the interpreter exits would otherwise kill it with the default
    # action (Python restores it at finalisation) and turn a clean stop into exit -15.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log.info("stopped")
    return 0


def _check_objective(model: LoadedModel) -> None:
    """The server answers probabilities: a model trained for anything else must not start."""
    objective = json.loads(model.booster.save_config())["learner"]["objective"]["name"]
    if objective not in PROBABILITY_OBJECTIVES:
        raise ModelError(
            f"model objective {objective!r} does not predict a probability; expected {PROBABILITY_OBJECTIVES}"
        )


def _limit_threads(model: LoadedModel, workers: int) -> None:
    """Requests run in parallel: each prediction gets its share of the cores, not all of them."""
    model.booster.set_param({"nthread": max(1, (os.cpu_count() or 1) // workers)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_steps.serve",
        description="Serve the model in SM_MODEL_DIR over the SageMaker hosting contract.",
    )
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve"], help="SageMaker passes 'serve'"
    )
    parser.add_argument("--host", help="address to bind (env SERVE_HOST, default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (env SAGEMAKER_BIND_TO_PORT, default 8080)")
    parser.add_argument(
        "--model-dir", type=Path, help="model directory (env SM_MODEL_DIR, default $OPT_ML_ROOT/model)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        settings = Settings.from_env(host=args.host, port=args.port, model_dir=args.model_dir)
    except ConfigError as err:
        log.error("invalid setting: %s", err)
        return 2
    return run(settings)
