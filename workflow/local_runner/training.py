"""A CreateTrainingJob request, run locally: channels, SageMaker's three config files, one
process per instance joined through a loopback tracker, then model.tar.gz to S3."""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import tarfile
from pathlib import Path
from typing import Any

from pipeline_steps.common.atomic import write_json
from pipeline_steps.common.contract import training_failure_path
from workflow.local_runner.jobs import environment, make_hosts, resource_config, run_hosts, step_module
from workflow.local_runner.storage import LocalS3


def host_threads(host_count: int) -> dict[str, str]:
    """OpenMP threads per host when several "instances" share this machine: its cores split
    between them, as separate instances each have their own.  Each XGBoost host otherwise takes
    every core and they wait for each other at every round's allreduce while spinning threads
    hold the cores: two hosts trained 60 rounds in 143 s instead of 33 s on 2 busy cores.
    A value the user set wins."""
    if host_count == 1 or "OMP_NUM_THREADS" in os.environ:
        return {}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {"OMP_NUM_THREADS": str(max(1, cores // host_count))}


def run_training(
    step: str, args: dict[str, Any], job_dir: Path, s3: LocalS3, job_name: str
) -> dict[str, Any]:
    """Runs a CreateTrainingJob request; returns the step's properties."""
    hosts = make_hosts(job_dir, int(args["ResourceConfig"]["InstanceCount"]))
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
        write_json(config / "resourceconfig.json", resource_config(host, hosts))
        write_json(config / "inputdataconfig.json", data_config)
        for folder in ("model", "output/data"):
            (host.root / folder).mkdir(parents=True, exist_ok=True)
        if args.get("CheckpointConfig"):  # SageMaker mounts the checkpoint folder only then
            (host.root / "checkpoints").mkdir(parents=True, exist_ok=True)
        env = environment(
            host,
            {
                **args.get("Environment", {}),
                "TRAINING_JOB_NAME": job_name,
                "SM_CURRENT_HOST": host.name,
                "SM_HOSTS": json.dumps([h.name for h in hosts]),
                # Every "host" is this machine: the tracker listens on loopback.
                "SM_TRACKER_HOST": "127.0.0.1",
                "SM_TRACKER_PORT": str(tracker_port),
                **host_threads(len(hosts)),
            },
        )
        commands.append((host, [sys.executable, "-m", module, "train"], env))
    run_hosts(step, commands, job_dir / "logs", lambda root: training_failure_path(root / "output"))

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
