"""The Preprocess step on Spark: the same preparation (`run.run`, `prepare.py`, `plan.py`) with the
plan's statements executed by Spark instead of the embedded engine.

On SageMaker, AWS's Spark processing image runs it as `smspark-submit --py-files <code zip>
spark_main.py ARGS` on the job's first instance, with every instance's executors behind it.
Locally (the tests, the local runner) it runs in Spark's local mode:

    python -m pipeline_steps.preprocess_spark.spark_main --feature-spec S --entities D --output O

Arguments are the step's own (`python -m pipeline_steps.preprocess --help`), plus `--staging`
(where Spark writes before the driver copies the outputs into place: the cluster's HDFS on
SageMaker) and `--threads` (local mode).  Every path defaults to the SageMaker processing path.
Bad input ends the job with exit code 2 and one message, as the embedded step does.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file by spark-submit: the package comes from --py-files
    sys.path[:] = [p for p in sys.path if p != str(Path(__file__).resolve().parent)]


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline_steps.preprocess.__main__ import config_from_args, parse_args, run_step

    staging, rest = _pop_option(list(sys.argv[1:] if argv is None else argv), "--staging")
    args = parse_args(rest)

    def work() -> dict[str, Any]:
        from pipeline_steps.preprocess.run import run
        from pipeline_steps.preprocess_spark.spark_engine import SparkEngine
        from pipeline_steps.preprocess_spark.spark_session import spark_session, under_spark_submit

        # One application for the whole cluster: one "host" that owns every row.
        cfg = dataclasses.replace(config_from_args(args), host="algo-1", first_host=True, hosts=[])
        scratch = Path(tempfile.mkdtemp(prefix="preprocess-spark-", dir=args.scratch))
        # The cluster's HDFS exists only under smspark-submit on the image; locally, a local folder.
        target = staging
        if target and target.startswith("hdfs:") and not under_spark_submit():
            target = None
        return run(cfg, engine=SparkEngine(spark_session(args.threads), scratch, target))

    return run_step(args, work, label="(spark)")


def _pop_option(argv: list[str], name: str) -> tuple[str | None, list[str]]:
    """(the value of `name` given as `name=value` or `name value`, the other arguments)."""
    value, rest = None, []
    items = iter(argv)
    for item in items:
        if item == name:
            value = next(items, None)
        elif item.startswith(name + "="):
            value = item[len(name) + 1 :]
        else:
            rest.append(item)
    return value, rest


if __name__ == "__main__":
    sys.exit(main())
