"""python -m pipeline_steps.preprocess [--feature-spec P] [--entities D] [--history D] [--output D] ...

Every path defaults to its SageMaker processing path under $OPT_ML_ROOT (default /opt/ml).
Bad input stops the job with exit code 1 and a message naming the column or field, also
written to $OPT_ML_ROOT/output/message (the processing job's failure reason).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipeline_steps.common.feature_spec import SpecError
from pipeline_steps.preprocess.errors import DataError


def _hosts(root: Path) -> tuple[str | None, list[str]]:
    path = root / "config" / "resourceconfig.json"
    try:
        config = json.loads(path.read_text())
        return config.get("current_host"), list(config.get("hosts") or [])
    except (OSError, ValueError):
        return None, []


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    root = Path(os.environ.get("OPT_ML_ROOT", "/opt/ml"))
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
    p.add_argument(
        "--ingest-feature-store-prefix",
        default=None,
        help="also PutRecord into feature groups named <prefix>-<group>",
    )
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    args = p.parse_args(argv)
    args.message = root / "output" / "message"
    args.first_host = args.host == (hosts[0] if hosts else "algo-1")
    return args


def _fail(message: str, path: Path) -> int:
    print(f"preprocess failed: {message}", file=sys.stderr)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message[:1024] + "\n")
    except OSError:
        pass
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from pipeline_steps.preprocess.run import Config, run

    cfg = Config(
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
        ingest_prefix=args.ingest_feature_store_prefix,
        region=args.region,
    )
    try:
        report = run(cfg)
    except (DataError, SpecError) as err:
        return _fail(str(err), args.message)
    except Exception as err:  # noqa: BLE001 - the reason must reach the job's failure message
        _fail(f"internal error: {type(err).__name__}: {err}", args.message)
        raise
    e = report["entities"]
    s = report["split"]
    rows = "/".join(str(s[name]["rows"]) for name in ("train", "validation", "test"))
    print(
        f"preprocess {args.host}: entities {e['rows_in']} in, {e['rows_out']} out, {e['rows_quarantined']} "
        f"quarantined; train/validation/test {rows}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
