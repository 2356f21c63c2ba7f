"""A CreateProcessingJob request, run locally: inputs (sharded by S3 key where asked), the
resource config, one process per instance, then every instance's outputs to their S3 locations."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pipeline_steps.common.atomic import write_json
from pipeline_steps.common.contract import processing_message_path
from workflow.local_runner.jobs import (
    LOCAL_FEATURE_STORE_ENV,
    environment,
    local_feature_store,
    make_hosts,
    resource_config,
    run_hosts,
    spark_application,
    step_module,
)
from workflow.local_runner.storage import LocalS3


def run_processing(step: str, args: dict[str, Any], job_dir: Path, s3: LocalS3) -> dict[str, Any]:
    """Runs a CreateProcessingJob request; returns the step's properties.

    A job on AWS's Spark image (`smspark-submit --py-files DIR APP ARGS`) runs its application
    once, on the first host, in Spark's local mode: on SageMaker the other instances only lend
    the one application their executors (through YARN), and run nothing of their own."""
    cluster = args["ProcessingResources"]["ClusterConfig"]
    spark = spark_application(args)
    hosts = make_hosts(job_dir, 1 if spark else int(cluster["InstanceCount"]))
    module = step_module("Processing", args)
    commands = []
    for index, host in enumerate(hosts):
        for item in args.get("ProcessingInputs", []):
            source = item["S3Input"]
            shard = (index, len(hosts)) if source.get("S3DataDistributionType") == "ShardedByS3Key" else None
            s3.download(source["S3Uri"], Path(host.rewrite(source["LocalPath"])), shard=shard)
        write_json(host.root / "config" / "resourceconfig.json", resource_config(host, hosts))
        for output in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
            Path(host.rewrite(output["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        container_args = [
            host.rewrite(str(a)) for a in args["AppSpecification"].get("ContainerArguments", [])
        ]
        command = [sys.executable, "-m", module, *container_args]
        # Feature Store stand-in: the ingest step writes a local offline store instead.
        local = {LOCAL_FEATURE_STORE_ENV: str(local_feature_store(s3))}
        if spark:
            py_files, app = (Path(host.rewrite(p)) for p in spark)
            command = [sys.executable, str(app), *container_args]
            # What --py-files does: every file of the folder on the application's PYTHONPATH.
            local["PYTHONPATH"] = os.pathsep.join(str(f) for f in sorted(py_files.iterdir()) if f.is_file())
        env = environment(host, {**args.get("Environment", {}), **local})
        commands.append((host, command, env))
    run_hosts(step, commands, job_dir / "logs", processing_message_path)

    properties: dict[str, Any] = {}
    for output in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
        uri = output["S3Output"]["S3Uri"]
        for host in hosts:
            s3.upload_dir(Path(host.rewrite(output["S3Output"]["LocalPath"])), uri)
        properties[f"ProcessingOutputConfig.Outputs['{output['OutputName']}'].S3Output.S3Uri"] = uri
    properties["ProcessingJobStatus"] = "Completed"
    return properties
