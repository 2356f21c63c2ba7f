"""A local endpoint: the serving container's server as a process on a local port.

Used by `python -m workflow.local_runner serve --model <group>/<version>`, by the Transform step
(batch transform goes through the same server, as on SageMaker) and by the demo.  The endpoint's
default name is the model package group's (e.g. `mlops-dev-merchant-credit`), variant
`AllTraffic`; data capture goes to the local S3 under the capture bucket at
`datacapture/<endpoint>/<variant>/yyyy/mm/dd/hh/` (see `pipeline_steps/serve/capture.py`).
Given the local S3, the endpoint also answers InvokeEndpointAsync: inputs are read from the
local S3, answers land under `async/<endpoint>/output/` of the capture bucket and refusals
under `async/<endpoint>/failure/`, as the deployed async endpoints' config puts them, and the
success and error notifications (the deployed `<endpoint>-async-success` / `-error` SNS topics)
are appended as JSON lines to `sns/<endpoint>-async-success.jsonl` / `-error.jsonl` of the run
folder.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from config import REPO_ROOT
from workflow.local_runner.local_values import LOCAL_CAPTURE_BUCKET
from workflow.local_runner.registry import LocalModelRegistry, RegistryError
from workflow.local_runner.storage import LocalS3
from workflow.local_runner.training import free_port

CAPTURE_PREFIX = "datacapture"
VARIANT = "AllTraffic"


class EndpointError(RuntimeError):
    pass


def capture_uri() -> str:
    return f"s3://{LOCAL_CAPTURE_BUCKET}/{CAPTURE_PREFIX}"


def async_uris(endpoint_name: str) -> tuple[str, str]:
    """(output path, failure path) of the endpoint's asynchronous answers in the local S3."""
    base = f"s3://{LOCAL_CAPTURE_BUCKET}/async/{endpoint_name}"
    return f"{base}/output", f"{base}/failure"


def async_topics(s3: LocalS3, endpoint_name: str) -> tuple[Path, Path]:
    """(success topic, error topic) files: the run folder's stand-ins for the deployed SNS topics."""
    folder = s3.root.parent / "sns"
    return folder / f"{endpoint_name}-async-success.jsonl", folder / f"{endpoint_name}-async-error.jsonl"


def resolve_model(model: str, root: Path) -> tuple[Path, str, str]:
    """`<group>/<version>` (or `<group>/latest`: the newest approved) or a path ->
    (model archive or directory, endpoint name, model version label)."""
    path = Path(model)
    if path.exists():
        return path, "local", path.name
    group, sep, version = model.rpartition("/")
    if not sep or not group:
        raise EndpointError(f"--model {model!r}: expected <group>/<version>, <group>/latest or a model path")
    registry = LocalModelRegistry(root / "registry")
    try:
        if version == "latest":
            package = registry.latest(group)
            if package is None:
                raise RegistryError(f"model package group {group!r} has no approved version")
        elif version.isdigit():
            package = registry.get(group, int(version))
        else:
            raise RegistryError(f"version {version!r} is not a number or 'latest'")
    except RegistryError as err:
        raise EndpointError(f"--model {model!r}: {err}") from None
    archive = package.get("LocalModelArchive")
    if not archive or not Path(archive).exists():
        raise EndpointError(f"--model {model!r}: the registered version has no local model archive")
    return Path(archive), group, f"{group}/{package['ModelPackageVersion']}"


# The serving container's entry point (`python -m pipeline_steps.serve serve`).
SERVE_MODULE = "pipeline_steps.serve"


class LocalEndpoint:
    """Starts the server (`python -m pipeline_steps.serve serve`) and stops it with SIGTERM."""

    def __init__(
        self,
        model: Path,
        *,
        endpoint_name: str,
        model_version: str | None = None,
        port: int | None = None,
        workers: int = 2,
        capture_dir: Path | None = None,
        capture_percent: float = 100.0,
        s3: LocalS3 | None = None,
        env: dict[str, str] | None = None,
        log: IO[str] | None = None,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.endpoint_name = endpoint_name
        command = [sys.executable, "-m", SERVE_MODULE, "serve", "--model-dir", str(model)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        command += ["--endpoint-name", endpoint_name]
        if model_version:
            command += ["--model-version", model_version]
        if capture_dir is not None and capture_percent > 0:
            command += ["--capture-dir", str(capture_dir), "--capture-percent", str(capture_percent)]
        environment = {**os.environ, **(env or {})}
        if s3 is not None:  # the local asynchronous mode (InvokeEndpointAsync)
            output, failure = async_uris(endpoint_name)
            success_topic, error_topic = async_topics(s3, endpoint_name)
            environment |= {
                "SERVE_ASYNC_S3_ROOT": str(s3.root),
                "SERVE_ASYNC_OUTPUT": output,
                "SERVE_ASYNC_FAILURE": failure,
                "SERVE_ASYNC_SUCCESS_TOPIC": str(success_topic),
                "SERVE_ASYNC_ERROR_TOPIC": str(error_topic),
            }
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")])
        )
        self.proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT if log else None
        )

    def wait_ready(self, timeout: float = 120) -> LocalEndpoint:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EndpointError(f"the server exited with code {self.proc.returncode} (see its log)")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise EndpointError(f"the server did not answer /ping within {timeout:.0f} s")

    def stop(self, timeout: float = 35) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> LocalEndpoint:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def capture_dir(s3: LocalS3) -> Path:
    return s3.path(capture_uri())
