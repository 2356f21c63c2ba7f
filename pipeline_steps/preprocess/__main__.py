"""python -m pipeline_steps.preprocess [--feature-spec P] [--entities D] [--history D] [--output D] ...

Every path defaults to its SageMaker processing path under $OPT_ML_ROOT (default /opt/ml).
Bad input stops the job with exit code 2 and one message naming the column or field (no
traceback unless --debug), also written to $OPT_ML_ROOT/output/message (the processing job's
failure reason).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline_steps.common.contract import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    InputError,
    opt_ml_root,
    processing_message_path,
    write_failure,
)


def _hosts(root: Path) -> tuple[str | None, list[str]]:
    path = root / "config" / "resourceconfig.json"
    try:
        config = json.loads(path.read_text())
        return config.get("current_host"), list(config.get("hosts") or [])
    except (OSError, ValueError):
        return None, []


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    root = opt_ml_root()
    current, hosts = _hosts(root)
    p = argparse.ArgumentParser(
        prog="python -m pipeline_steps.preprocess",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inp = root / "processing" / "input"
    p.add_argument("--feature-spec", type=Path, default=inp / "spec", help="spec file, or a folder with one")
    p.add_argument("--entities", type=Path, default=inp / "entities")
    p.add_argument("--history", type=Path, default=inp / "history")
    p.add_argument("--output", type=Path, default=root / "processing" / "output")
    p.add_argument("--validation-start", help="ISO date; overrides the spec's fractions (with --test-start)")
    p.add_argument("--test-start", help="ISO date; overrides the spec's fractions (with --validation-start)")
    p.add_argument(
        "--as-of-time",
        default=None,
        help="without a time column in the spec: the Feature Store event time (ISO-8601); "
        "empty -> --run-started",
    )
    p.add_argument("--run-started", default=None, help="the pipeline execution's start time (ISO-8601)")
    p.add_argument("--host", default=current or "algo-1")
    p.add_argument("--scratch", type=Path, default=None, help="folder for the engine's spill files")
    p.add_argument(
        "--memory-limit", default=None, help="the engine's memory limit (e.g. 4GB); default half the RAM"
    )
    p.add_argument("--threads", type=int, default=None, help="the engine's threads; default every core")
    p.add_argument("--debug", action="store_true", help="show the traceback of an input error too")
    args = p.parse_args(argv)
    args.message = processing_message_path(root)
    args.first_host = args.host == (hosts[0] if hosts else "algo-1")
    args.hosts = hosts
    return args


def config_from_args(args: argparse.Namespace) -> Any:
    """The run's Config from parsed arguments (also used by pipeline_steps/preprocess_spark/spark_main.py)."""
    from pipeline_steps.preprocess.run import Config

    return Config(
        spec=args.feature_spec,
        entities=args.entities,
        history=args.history,
        output=args.output,
        host=args.host,
        first_host=args.first_host,
        validation_start=args.validation_start,
        test_start=args.test_start,
        as_of_time=args.as_of_time,
        run_started=args.run_started,
        hosts=args.hosts,
        scratch=args.scratch,
        memory_limit=args.memory_limit,
        threads=args.threads,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from pipeline_steps.preprocess.run import run

    return run_step(args, lambda: run(config_from_args(args)), label=args.host)


def run_step(args: argparse.Namespace, work: Callable[[], dict[str, Any]], label: str) -> int:
    """Runs `work` (the preparation, on any engine) as a SageMaker step: bad input is one
    message and exit 2, anything else the traceback and exit 1, both in the failure file;
    done, one line of row counts."""
    try:
        report = work()
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
        f"preprocess {label}: entities {e['rows_in']} in, {e['rows_out']} out, "
        f"{e['rows_quarantined']} quarantined; train/validation/test {sizes}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
