"""Processing and training jobs as local processes, under the SageMaker container contract.

Each instance ("host") gets its own folder standing in for /opt/ml: inputs are placed where
the job request says, the config files SageMaker writes are written, the step's module runs
with OPT_ML_ROOT pointing there, and on success the outputs go to their S3 locations.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import REPO_ROOT
from pipeline_steps.common.atomic import write_json
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


@dataclass
class Host:
    name: str
    root: Path  # stands in for /opt/ml

    def rewrite(self, value: str) -> str:
        """/opt/ml/... in an argument -> this host's folder."""
        if value == OPT_ML or value.startswith(OPT_ML + "/"):
            return str(self.root) + value[len(OPT_ML) :]
        return value


LOCAL_FEATURE_STORE_ENV = "LOCAL_FEATURE_STORE_DIR"  # read by pipeline_steps.ingest


def local_feature_store(s3: LocalS3) -> Path:
    """The local offline store folder (`<root>/feature-store`), beside the local S3 folder."""
    return s3.root.parent / "feature-store"


def module_of_image(image: str) -> str:
    if not image.startswith(LOCAL_IMAGE_PREFIX):
        raise StepFailed("?", f"image {image!r} cannot run locally (expected {LOCAL_IMAGE_PREFIX}<module>)")
    return image[len(LOCAL_IMAGE_PREFIX) :]


def step_module(step_type: str, arguments: dict[str, Any]) -> str:
    """The Python module a job runs: the processing entrypoint, or the training image's."""
    if step_type == "Processing":
        entry = arguments["AppSpecification"].get("ContainerEntrypoint") or []
        if len(entry) >= 3 and entry[1] == "-m":
            return entry[2]
        return module_of_image(arguments["AppSpecification"]["ImageUri"])
    if step_type == "Tuning":
        arguments = arguments["TrainingJobDefinition"]
    return module_of_image(arguments["AlgorithmSpecification"]["TrainingImage"])


def _hosts(job_dir: Path, count: int) -> list[Host]:
    hosts = []
    for i in range(count):
        root = job_dir / f"algo-{i + 1}" / "opt" / "ml"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        hosts.append(Host(f"algo-{i + 1}", root))
    return hosts


def _resource_config(host: Host, hosts: list[Host]) -> dict[str, Any]:
    return {
        "current_host": host.name,
        "hosts": [h.name for h in hosts],
        "network_interface_name": "lo",
        "current_group_name": "homogeneousCluster",
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "hosts": [h.name for h in hosts]}],
    }


def _environment(host: Host, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    env[OPT_ML_ROOT] = str(host.root)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_hosts(
    step: str, commands: list[tuple[Host, list[str], dict[str, str]]], logs: Path, failure_file: str
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
            message_file = host.root / "output" / failure_file
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- processing -------------------------------------------------------------------------
def run_processing(step: str, args: dict[str, Any], job_dir: Path, s3: LocalS3) -> dict[str, Any]:
    """Runs a CreateProcessingJob request; returns the step's properties."""
    cluster = args["ProcessingResources"]["ClusterConfig"]
    hosts = _hosts(job_dir, int(cluster["InstanceCount"]))
    module = step_module("Processing", args)
    commands = []
    for index, host in enumerate(hosts):
        for item in args.get("ProcessingInputs", []):
            source = item["S3Input"]
            shard = (index, len(hosts)) if source.get("S3DataDistributionType") == "ShardedByS3Key" else None
            s3.download(source["S3Uri"], Path(host.rewrite(source["LocalPath"])), shard=shard)
        write_json(host.root / "config" / "resourceconfig.json", _resource_config(host, hosts))
        for output in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
            Path(host.rewrite(output["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        container_args = [
            host.rewrite(str(a)) for a in args["AppSpecification"].get("ContainerArguments", [])
        ]
        command = [sys.executable, "-m", module, *container_args]
        # Feature Store stand-in: the ingest step writes a local offline store instead.
        local = {LOCAL_FEATURE_STORE_ENV: str(local_feature_store(s3))}
        env = _environment(host, {**args.get("Environment", {}), **local})
        commands.append((host, command, env))
    _run_hosts(step, commands, job_dir / "logs", "message")

    properties: dict[str, Any] = {}
    for output in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
        uri = output["S3Output"]["S3Uri"]
        for host in hosts:
            s3.upload_dir(Path(host.rewrite(output["S3Output"]["LocalPath"])), uri)
        properties[f"ProcessingOutputConfig.Outputs['{output['OutputName']}'].S3Output.S3Uri"] = uri
    properties["ProcessingJobStatus"] = "Completed"
    return properties


# ---- training ---------------------------------------------------------------------------
def run_training(
    step: str, args: dict[str, Any], job_dir: Path, s3: LocalS3, job_name: str
) -> dict[str, Any]:
    """Runs a CreateTrainingJob request; returns the step's properties."""
    hosts = _hosts(job_dir, int(args["ResourceConfig"]["InstanceCount"]))
    module = step_module("Training", args)
    tracker_port = free_port()
    commands = []
    for index, host in enumerate(hosts):
        data_config = {}
        for channel in args.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]
            distribution = source.get("S3DataDistributionType", "FullyReplicated")
            shard = (index, len(hosts)) if distribution == "ShardedByS3Key" else None
            s3.download(source["S3Uri"], host.root / "input" / "data" / channel["ChannelName"], shard=shard)
            data_config[channel["ChannelName"]] = {
                "TrainingInputMode": channel.get("InputMode", "File"),
                "S3DistributionType": distribution,
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
        config = host.root / "input" / "config"
        write_json(
            config / "hyperparameters.json", {k: str(v) for k, v in args.get("HyperParameters", {}).items()}
        )
        write_json(config / "resourceconfig.json", _resource_config(host, hosts))
        write_json(config / "inputdataconfig.json", data_config)
        for folder in ("model", "output/data"):
            (host.root / folder).mkdir(parents=True, exist_ok=True)
        if args.get("CheckpointConfig"):  # SageMaker mounts the checkpoint folder only then
            (host.root / "checkpoints").mkdir(parents=True, exist_ok=True)
        env = _environment(
            host,
            {
                **args.get("Environment", {}),
                "TRAINING_JOB_NAME": job_name,
                "SM_CURRENT_HOST": host.name,
                "SM_HOSTS": json.dumps([h.name for h in hosts]),
                # Every "host" is this machine: the tracker listens on loopback.
                "SM_TRACKER_HOST": "127.0.0.1",
                "SM_TRACKER_PORT": str(tracker_port),
            },
        )
        commands.append((host, [sys.executable, "-m", module, "train"], env))
    _run_hosts(step, commands, job_dir / "logs", "failure")

    model_dir = hosts[0].root / "model"
    archive = job_dir / "model.tar.gz"
    _tar_model(model_dir, archive)
    uri = f"{str(args['OutputDataConfig']['S3OutputPath']).rstrip('/')}/{job_name}/output/model.tar.gz"
    s3.put_file(archive, uri)
    archive.unlink()
    return {
        "ModelArtifacts.S3ModelArtifacts": uri,
        "TrainingJobName": job_name,
        "TrainingJobStatus": "Completed",
    }


def _tar_model(model_dir: Path, archive: Path) -> None:
    """model.tar.gz as SageMaker makes it; fixed mtimes so equal models give equal archives."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with (
        gzip.GzipFile(archive, "wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), filter=normalise)
