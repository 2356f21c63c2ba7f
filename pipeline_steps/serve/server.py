"""`python -m pipeline_steps.serve serve`: the process SageMaker runs in the serving container.

A small supervisor binds the port once and forks `workers` processes; each loads the model
(XGBoost, converted to ONNX Runtime and checked against it), then serves the raw ASGI app
(`app.py`) with uvicorn (httptools parser with one socket write per response, uvloop) on the
shared socket.  A worker that fails to
load stops the whole server with its reason and exit code 2 (the step contract: input it
cannot use); one that dies later is replaced.

SIGTERM (or SIGINT) goes to every worker: it stops accepting, finishes in-flight requests
(their responses carry `Connection: close`; at most `shutdown_timeout` s, below SageMaker's 30 s
before SIGKILL), flushes data capture, and the server exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import os
import select
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline_steps.common.contract import EXIT_INPUT
from pipeline_steps.common.model_io import MODEL_FILE, ModelError, resolve_model_dir
from pipeline_steps.serve.settings import ConfigError, Settings

log = logging.getLogger("serve")
PROBABILITY_OBJECTIVES = ("binary:logistic", "reg:logistic")
LOAD_FAILED = 3  # a worker's exit code when the model cannot be served
__all__ = ["ConfigError", "Settings", "main", "run"]


# ---- one worker --------------------------------------------------------------------------------
def build_app(settings: Settings) -> Any:  # an app.App; imported lazily (xgboost, onnx)
    """Loads the model and returns the ASGI app (raises ModelError with the reason)."""
    from pipeline_steps.common.model_io import load_model_dir, model_threshold
    from pipeline_steps.serve.app import App, Model
    from pipeline_steps.serve.async_inference import AsyncConfig
    from pipeline_steps.serve.capture import CaptureWriter
    from pipeline_steps.serve.features import FeatureEncoder
    from pipeline_steps.serve.predictor import Predictor, PredictorError

    started = time.perf_counter()
    loaded = load_model_dir(settings.model_dir)
    objective = json.loads(loaded.booster.save_config())["learner"]["objective"]["name"]
    if objective not in PROBABILITY_OBJECTIVES:
        raise ModelError(
            f"model objective {objective!r} does not predict a probability; expected {PROBABILITY_OBJECTIVES}"
        )
    try:
        predictor = Predictor(loaded.booster, loaded.spec.model_features, mode=settings.predictor)
    except PredictorError as err:
        raise ModelError(str(err)) from None
    threshold = settings.threshold if settings.threshold is not None else model_threshold(loaded.meta)
    version = settings.model_version or _model_digest(settings.model_dir / MODEL_FILE)
    model = Model(
        encoder=FeatureEncoder(loaded.spec, unknown_category=settings.unknown_category),
        predictor=predictor,
        threshold=threshold,
        version=version,
        max_payload_mb=settings.max_payload_mb,
        workers=settings.workers,
        endpoint_name=settings.endpoint_name,
        variant_name=settings.variant_name,
        access_log=settings.access_log,
    )
    capture = None
    if settings.capture_dir is not None and settings.capture_percent > 0:
        root = settings.capture_dir

        def capture() -> CaptureWriter:
            return CaptureWriter(
                root,
                settings.endpoint_name,
                settings.variant_name,
                percent=settings.capture_percent,
                roll_seconds=settings.capture_roll_seconds,
            )

    diff = predictor.max_difference
    log.info(
        "worker %d: model %s loaded in %.2fs (%d features, threshold %s, predictor %s%s)",
        os.getpid(),
        version,
        time.perf_counter() - started,
        len(loaded.spec.model_features),
        threshold,
        predictor.kind,
        f", max |ONNX - XGBoost| {diff:.1e} on probe rows" if diff is not None else "",
    )
    async_config = None
    if settings.async_output is not None and settings.async_s3_root is not None:
        async_config = AsyncConfig(
            s3_root=settings.async_s3_root,
            output_path=settings.async_output,
            failure_path=settings.async_failure or settings.async_output,
            max_queue=settings.async_max_queue,
            endpoint_name=settings.endpoint_name,
            region=settings.region,
            success_topic=settings.async_success_topic,
            error_topic=settings.async_error_topic,
        )
    return App(model, capture, async_config)


def _model_digest(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"model-{digest[:12]}"


def _worker(settings: Settings, sock: socket.socket, report: int) -> int:
    """Runs in the forked child: load, report readiness (or the reason it cannot), serve."""
    stop_requested: list[int] = []
    servers: list[Any] = []

    def remember(signum: int, _frame: FrameType | None) -> None:
        stop_requested.append(signum)  # a stop while loading is honoured once loaded
        # A stop after the check below but before uvicorn installs its handlers: tell the
        # server directly (uvicorn reads should_exit after start-up and never clears it).
        for server in servers:
            server.should_exit = True

    signal.signal(signal.SIGTERM, remember)  # until uvicorn installs its own handlers
    signal.signal(signal.SIGINT, remember)
    from pipeline_steps.serve.predictor import limit_native_threads

    limit_native_threads()
    try:
        app = build_app(settings)
    except ModelError as err:
        os.write(report, f"cannot serve: {err}".encode()[:4000])
        return LOAD_FAILED
    # The model, the converter and the libraries are loaded for good: the garbage collector
    # need not traverse them again on every full collection while serving.
    gc.collect()
    gc.freeze()
    import uvicorn

    from pipeline_steps.serve.http_protocol import CoalescingHttpToolsProtocol

    config = uvicorn.Config(
        app,
        http=CoalescingHttpToolsProtocol,  # httptools, one socket write per response
        loop="uvloop",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_keep_alive=60,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        limit_concurrency=None,
        proxy_headers=False,  # nothing here reads the client address; saves a middleware per request
        backlog=2048,
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    server = uvicorn.Server(config)
    servers.append(server)
    os.write(report, b"ready")
    os.close(report)
    if not stop_requested:
        server.run(sockets=[sock])
    return 0


# ---- the supervisor ----------------------------------------------------------------------------
class _Supervisor:
    def __init__(self, settings: Settings, sock: socket.socket):
        self.settings = settings
        self.sock = sock
        self.children: dict[int, int] = {}  # pid -> report pipe (read end), -1 once ready
        self.stopping = False

    def spawn(self) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read)
            code = 1
            try:
                code = _worker(self.settings, self.sock, write)
            except BaseException:  # a worker must never return into the supervisor
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write)
        self.children[pid] = read

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("received %s: stop accepting, finish in-flight requests", signal.Signals(signum).name)
        self.stopping = True
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def wait_ready(self) -> str | None:
        """None once every worker reports ready; else the first failure's message."""
        pending = dict(self.children)
        while pending:
            readable, _, _ = select.select(list(pending.values()), [], [], 0.5)
            for fd in readable:
                pid = next(p for p, f in pending.items() if f == fd)
                message = os.read(fd, 4096).decode(errors="replace")
                os.close(fd)
                del pending[pid]
                self.children[pid] = -1
                if message != "ready":
                    return message or f"worker {pid} exited while loading the model"
            if self.stopping:
                return None
        return None

    def supervise(self) -> int:
        """Waits for the workers; replaces one that dies unexpectedly; returns the exit code."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
                continue
            except ChildProcessError:
                break
            self.children.pop(pid, None)
            if not self.stopping:
                code = os.waitstatus_to_exitcode(status)
                log.error("worker %d exited unexpectedly (%d); starting another", pid, code)
                time.sleep(0.5)
                self.spawn()
                failure = self.wait_ready()
                if failure:
                    log.error("%s", failure)
                    self.stop(signal.SIGTERM, None)
                    return 1
        return 0


def run(settings: Settings) -> int:
    try:
        # a directory SageMaker extracted, or one holding model.tar.gz (the local runner)
        model_dir = resolve_model_dir(settings.model_dir, Path(tempfile.mkdtemp(prefix="model-")))
    except ModelError as err:
        log.error("cannot serve: %s", err)
        return EXIT_INPUT
    settings = dataclasses.replace(settings, model_dir=model_dir)
    try:
        sock = socket.create_server((settings.host, settings.port), backlog=2048, reuse_port=False)
    except OSError as err:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, err.strerror)
        return 1
    sock.set_inheritable(True)
    supervisor = _Supervisor(settings, sock)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    for _ in range(settings.workers):
        supervisor.spawn()
    sock.close()  # the workers hold it; once they stop, new connections are refused
    failure = supervisor.wait_ready()
    if failure:  # the model cannot be served (a worker named the reason): input, not a bug
        log.error("%s", failure)
        supervisor.stop(signal.SIGTERM, None)
        supervisor.supervise()
        return EXIT_INPUT
    if not supervisor.stopping:
        log.info(
            "listening on %s:%d (%d workers, endpoint %s/%s)",
            settings.host,
            settings.port,
            settings.workers,
            settings.endpoint_name,
            settings.variant_name,
        )
    code = supervisor.supervise()
    # A repeated SIGTERM while the interpreter exits would kill it with the default action.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log.info("stopped")
    return code


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
        "--model-dir",
        type=Path,
        help="model directory or model.tar.gz (env SM_MODEL_DIR, default /opt/ml/model)",
    )
    parser.add_argument(
        "--workers", type=int, help="worker processes (env SERVE_WORKERS, default the CPU count)"
    )
    parser.add_argument(
        "--endpoint-name", help="endpoint name for the Runtime route and capture (env SERVE_ENDPOINT_NAME)"
    )
    parser.add_argument("--model-version", help="model version reported with every prediction")
    parser.add_argument(
        "--capture-dir", type=Path, help="write data capture under this folder (env SERVE_CAPTURE_DIR)"
    )
    parser.add_argument("--capture-percent", type=float, help="percentage of requests captured (default 100)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
    )
    try:
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            model_dir=args.model_dir,
            workers=args.workers,
            endpoint_name=args.endpoint_name,
            model_version=args.model_version,
            capture_dir=args.capture_dir,
            capture_percent=args.capture_percent,
        )
        _check(settings)
    except ConfigError as err:
        log.error("invalid setting: %s", err)
        return EXIT_INPUT
    return run(settings)


def _check(settings: Settings) -> None:
    if settings.workers < 1:
        raise ConfigError(f"--workers {settings.workers}: expected at least 1")
    if settings.model_version and any(c in settings.model_version for c in ",\r\n"):
        raise ConfigError(f"model version {settings.model_version!r} must not hold commas or line breaks")
    if not 0 <= settings.capture_percent <= 100:
        raise ConfigError(f"capture percent {settings.capture_percent}: expected 0..100")
