"""The Spark-vs-embedded comparison's two runs, in a background process.

Spark's local mode spends ~25 s of one core (its JVM) on the comparison's small data, nearly all
of it per-statement overhead, while the suite keeps about one of the machine's cores busy.  So
tests/conftest.py starts this process (at the lowest priority) when the session starts, if the
comparison test is selected; the other tests run meanwhile, and the comparison test (ordered
last) reads what both engines wrote.  Run as a script, it makes the data, starts one
SparkSession, runs the whole preprocess step with each engine and pickles both reports.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO / "workflow" / "specs" / "merchant_credit.yaml"
REPORTS = "reports.pickle"


def make_data(root: Path) -> Path:
    """400 merchants with the generator's mess, entities as two CSV files, history as Parquet, and
    duplicates placed across the files: an exact copy and a changed copy of a file-0 row in file 1."""
    from workflow.datasets import merchant_credit as mc

    mc.make(str(root), 400, seed=11, parts=2)
    files = sorted((root / "entities").glob("*.parquet"))
    frames = [pd.read_parquet(f).astype("string") for f in files]
    first = frames[0].dropna().iloc[[0]]
    changed = first.assign(requested_amount="12345")
    frames[1] = pd.concat([frames[1], first, changed], ignore_index=True)
    for path, frame in zip(files, frames, strict=True):
        frame.to_csv(path.with_suffix(".csv"), index=False)
        path.unlink()
    return root


def run_both(root: Path) -> dict[str, Any]:
    """Each engine runs the whole step (`run.run`) on the same data: outputs under root/<engine>."""
    from pipeline_steps.preprocess.run import Config, run
    from pipeline_steps.preprocess_spark.spark_engine import SparkEngine
    from pipeline_steps.preprocess_spark.spark_session import spark_session

    data = make_data(root / "in")
    spark = spark_session(2, app_name="tests", small=True)
    try:
        reports = {}
        for name in ("embedded", "spark"):
            cfg = Config(
                spec=SPEC_PATH, entities=data / "entities", history=data / "history", output=root / name
            )
            engine = SparkEngine(spark, root / "spark-scratch") if name == "spark" else None
            reports[name] = run(cfg, engine=engine)
        return reports
    finally:
        spark.stop()


class SparkComparisonJob:
    """The comparison's runs in a process started now; `result()` waits for them."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="spark-vs-embedded-"))
        self.log = self.root / "job.log"  # a file, not a pipe: Spark's log could fill a pipe
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, __file__, str(self.root)],
                cwd=REPO,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def result(self, timeout: float = 900) -> tuple[Path, dict[str, Any]]:
        """(the folder with in/, embedded/ and spark/, {engine: the step's report})."""
        self.process.wait(timeout=timeout)
        log = self.log.read_text(errors="replace")
        assert self.process.returncode == 0, f"the Spark comparison process failed:\n{log[-3000:]}"
        return self.root, pickle.loads((self.root / REPORTS).read_bytes())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def main(root: str) -> None:
    # Lowest priority, as the cfn-lint job: the runs take only CPU time the tests leave idle.
    os.nice(19)
    reports = run_both(Path(root))
    (Path(root) / REPORTS).write_bytes(pickle.dumps(reports))


if __name__ == "__main__":
    main(sys.argv[1])
