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

import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a file by spark-submit: the package comes from --py-files
    sys.path[:] = [p for p in sys.path if p != str(Path(__file__).resolve().parent)]

from pipeline_steps.common.contract import EXIT_INPUT, EXIT_INTERNAL, InputError, write_failure


def main(argv: Sequence[str] | None = None) -> int:
    import dataclasses

    from pipeline_steps.preprocess.__main__ import config_from_args, parse_args

    staging, rest = _pop_option(list(sys.argv[1:] if argv is None else argv), "--staging")
    args = parse_args(rest)
    try:
        from pipeline_steps.preprocess.run import run
        from pipeline_steps.preprocess_spark.spark_engine import SparkEngine
        from pipeline_steps.preprocess_spark.spark_session import spark_session, under_spark_submit

        # One application for the whole cluster: one "host" that owns every row.
        cfg = dataclasses.replace(config_from_args(args), host="algo-1", first_host=True, hosts=[])
        scratch = Path(tempfile.mkdtemp(prefix="preprocess-spark-", dir=args.scratch))
        # The cluster's HDFS exists only under smspark-submit on the image; locally, a local folder.
        if staging and staging.startswith("hdfs:") and not under_spark_submit():
            staging = None
        engine = SparkEngine(spark_session(args.threads), scratch, staging)
        report = run(cfg, engine=engine)
    except InputError as err:
        if args.debug:
            traceback.print_exc()
        write_failure("preprocess", str(err), args.message)
        return EXIT_INPUT
    except Exception as err:  # the reason must reach the job's failure message, then the traceback
        traceback.print_exc()
        write_failure("preprocess", f"internal error: {type(err).__name__}: {err}", args.message)
        return EXIT_INTERNAL
    e, s = report["entities"], report["split"]
    sizes = "/".join(str(s[name]["rows"]) for name in ("train", "validation", "test"))
    print(
        f"preprocess (spark): entities {e['rows_in']} in, {e['rows_out']} out, "
        f"{e['rows_quarantined']} quarantined; train/validation/test {sizes}"
    )
    return 0


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
