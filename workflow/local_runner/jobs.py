"""A SageMaker job as local processes, one per instance ("host"), under the container contract.

Each host gets its own folder standing in for /opt/ml, and the step's module runs with
OPT_ML_ROOT pointing there.  `processing.py` and `training.py` place each kind of job's inputs
and config files, then start the hosts here; a failing host stops the others and its own
failure message (or its log's last lines) becomes the step's failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import REPO_ROOT
from pipeline_steps.common.contract import OPT_ML, OPT_ML_ROOT
from workflow.local_runner.storage import LocalS3

# Local stand-in for an ECR image: the module the image's entrypoint runs.
LOCAL_IMAGE_PREFIX = "local-image:"


class StepFailed(RuntimeError):
    """A step of an execution failed: its name, its own failure message and its log, if any.

    Raised by a job (the step's failure file) and by the runner (a Fail step, a definition
    error); the execution records it as its failure."""

    def __init__(self, step: str, message: str, log: Path | None = None):
        super().__init__(f"step {step} failed: {message}")
        self.step = step
        self.message = message
        self.log = log

    def __reduce__(self) -> tuple[type[StepFailed], tuple[str, str, Path | None]]:
        """Pickled with its own arguments (an ExecutionResult carries it between processes)."""
        return (StepFailed, (self.step, self.message, self.log))


@dataclass
class Host:
    name: str
    root: Path  # stands in for /opt/ml

    def rewrite(self, value: str) -> str:
        """/opt/ml/... in an argument (or an `--option=/opt/ml/...` token) -> this host's folder."""
        if value == OPT_ML or value.startswith(OPT_ML + "/"):
            return str(self.root) + value[len(OPT_ML) :]
        option, sep, rest = value.partition("=")
        if sep and option.startswith("--") and (rest == OPT_ML or rest.startswith(OPT_ML + "/")):
            return f"{option}={self.rewrite(rest)}"
        return value


LOCAL_FEATURE_STORE_ENV = "LOCAL_FEATURE_STORE_DIR"  # read by pipeline_steps.ingest


def local_feature_store(s3: LocalS3) -> Path:
    """The local offline store folder (`<root>/feature-store`), beside the local S3 folder."""
    return s3.root.parent / "feature-store"


def module_of_image(image: str) -> str:
    if not image.startswith(LOCAL_IMAGE_PREFIX):
        raise StepFailed("?", f"image {image!r} cannot run locally (expected {LOCAL_IMAGE_PREFIX}<module>)")
    return image[len(LOCAL_IMAGE_PREFIX) :]


SPARK_SUBMIT = "smspark-submit"  # the entrypoint of AWS's Spark processing image
# A Spark job's code arrives as processing inputs (application file, code zip), whose contents
# are part of the step's cache key already; of the repository, only the shared code is added.
SPARK_CODE_MODULE = "pipeline_steps.common"


def spark_application(arguments: dict[str, Any]) -> tuple[str, str] | None:
    """(the --py-files folder, the application file) of a job on the Spark image, else None."""
    entry = arguments["AppSpecification"].get("ContainerEntrypoint") or []
    if not entry or entry[0] != SPARK_SUBMIT:
        return None
    options, app = entry[1:-1], entry[-1]
    if len(options) != 2 or options[0] != "--py-files":
        raise StepFailed("?", f"{SPARK_SUBMIT} {options}: only --py-files <folder> runs locally")
    return options[1], app


def step_module(step_type: str, arguments: dict[str, Any]) -> str:
    """The Python module a job runs: the processing entrypoint, or the training image's."""
    if step_type == "Processing":
        entry = arguments["AppSpecification"].get("ContainerEntrypoint") or []
        if len(entry) >= 3 and entry[1] == "-m":
            return entry[2]
        if spark_application(arguments):
            return SPARK_CODE_MODULE
        return module_of_image(arguments["AppSpecification"]["ImageUri"])
    if step_type == "Tuning":
        arguments = arguments["TrainingJobDefinition"]
    return module_of_image(arguments["AlgorithmSpecification"]["TrainingImage"])


def make_hosts(job_dir: Path, count: int) -> list[Host]:
    hosts = []
    for i in range(count):
        root = job_dir / f"algo-{i + 1}" / "opt" / "ml"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        hosts.append(Host(f"algo-{i + 1}", root))
    return hosts


def resource_config(host: Host, hosts: list[Host]) -> dict[str, Any]:
    return {
        "current_host": host.name,
        "hosts": [h.name for h in hosts],
        "network_interface_name": "lo",
        "current_group_name": "homogeneousCluster",
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "hosts": [h.name for h in hosts]}],
    }


def environment(host: Host, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    env[OPT_ML_ROOT] = str(host.root)
    # The repository's code, after what the job brings itself (a Spark job's code zip).
    paths = [extra.get("PYTHONPATH"), str(REPO_ROOT), os.environ.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_hosts(
    step: str,
    commands: list[tuple[Host, list[str], dict[str, str]]],
    logs: Path,
    failure_path: Callable[[Path], Path],
) -> None:
    """Starts every host's process, waits for all; the first failure stops the others."""
    logs.mkdir(parents=True, exist_ok=True)
    running: list[tuple[Host, subprocess.Popen, Path]] = []
    try:
        for host, command, env in commands:
            log = logs / f"{host.name}.log"
            handle = log.open("w")
            proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            handle.close()
            running.append((host, proc, log))
        failed: tuple[Host, int, Path] | None = None
        pending = list(running)
        while pending:
            for item in list(pending):
                host, proc, log = item
                try:
                    code = proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                pending.remove(item)
                if code != 0 and failed is None:
                    failed = (host, code, log)
                    for _, other, _ in pending:
                        _terminate(other)
        if failed:
            host, code, log = failed
            message_file = failure_path(host.root)
            message = message_file.read_text().strip() if message_file.exists() else ""
            if not message:
                message = f"exit code {code}; last lines of the log:\n" + _tail(log)
            raise StepFailed(step, message, log)
    except KeyboardInterrupt:
        for _, proc, _ in running:
            _terminate(proc)
        raise


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            proc.kill()


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
