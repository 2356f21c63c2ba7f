"""python -m pipeline_steps.monitor [options]: one monitoring run (a SageMaker Processing job).

Every path defaults to the processing container's; the same script runs locally with paths.
Findings (drift, violations, alerts) are results, not failures: the job exits 0 and writes
them.  Unusable inputs (no baseline, a spec the baseline does not match) exit 2 with the
reason in /opt/ml/output/message (the step contract, pipeline_steps/common/contract.py); an
unexpected failure exits 1 with its reason there and the traceback in the log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline_steps.common import baseline
from pipeline_steps.common.contract import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    InputError,
    opt_ml_root,
    processing_message_path,
    write_failure,
)
from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.common.model_io import load_model_dir, resolve_model_dir
from pipeline_steps.monitor.run import Inputs, Settings, jsonl_files, monitor

PROCESSING = opt_ml_root() / "processing"


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None


def _override(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FEATURE=PSI, e.g. monthly_revenue=0.25"
        ) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline_steps.monitor", description=__doc__)
    p.add_argument(
        "--capture", type=Path, default=PROCESSING / "input" / "capture", help="capture JSONL folder"
    )
    p.add_argument("--baseline", type=Path, default=PROCESSING / "input" / "baseline")
    p.add_argument("--ground-truth", type=Path, default=PROCESSING / "input" / "ground_truth")
    p.add_argument("--evaluation", type=Path, default=PROCESSING / "input" / "evaluation")
    p.add_argument("--model", type=Path, default=PROCESSING / "input" / "model")
    p.add_argument("--spec", type=Path, help="feature spec (default: the model's own)")
    p.add_argument("--output", type=Path, default=PROCESSING / "output" / "monitoring")
    p.add_argument("--endpoint", default=os.environ.get("ENDPOINT_NAME", "endpoint"))
    p.add_argument("--drift-psi", type=float, default=0.2, help="PSI threshold (config thresholds.drift_psi)")
    p.add_argument(
        "--psi", type=_override, action="append", default=[], help="FEATURE=PSI per-feature threshold"
    )
    p.add_argument("--drift-share", type=float, default=0.3, help="alert when more features than this drift")
    p.add_argument("--auc-floor", type=float, help="alert when the realized AUC falls below")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the model's)")
    p.add_argument("--window-end", type=_time, help="ISO time; records at or after it are left out")
    p.add_argument("--window-start", type=_time)
    p.add_argument("--window-hours", type=float, help="window length before --window-end")
    p.add_argument("--attribution-rows", type=int, default=20_000)
    p.add_argument("--debug", action="store_true", help="print the traceback of an input error too")
    args = p.parse_args(argv)
    if args.window_hours is not None:
        if args.window_end is None:
            p.error("--window-hours needs --window-end")
        args.window_start = args.window_end - timedelta(hours=args.window_hours)
    return args


def _evaluation(path: Path) -> dict[str, Any]:
    file = path / "evaluation.json" if path.is_dir() else path
    return json.loads(file.read_text()) if file.is_file() else {}


def run(args: argparse.Namespace) -> dict[str, Any]:
    partials = sorted(args.baseline.glob("partial-*.json")) if args.baseline.is_dir() else []
    if not partials:
        for name in ("statistics.json", "constraints.json"):
            if not (args.baseline / name).is_file():
                raise InputError(f"baseline: {args.baseline / name} is missing (preprocess writes it)")
    with tempfile.TemporaryDirectory(prefix="model-") as work:
        model = None
        if args.model.exists() and any(args.model.iterdir() if args.model.is_dir() else [args.model]):
            model = load_model_dir(resolve_model_dir(args.model, Path(work)))
        if args.spec:
            spec = load_spec(args.spec)
        elif model is not None:
            spec = model.spec
        else:
            raise InputError("no feature spec: give --spec or a model (--model) that carries one")
        if (args.baseline / "statistics.json").is_file():
            statistics = json.loads((args.baseline / "statistics.json").read_text())
            constraints = json.loads((args.baseline / "constraints.json").read_text())
        else:  # a multi-instance preprocess wrote one partial baseline per host: merged here
            statistics = baseline.merge([json.loads(p.read_text()) for p in partials], spec)
            constraints = baseline.constraints(statistics, spec)
        names = [f["name"] for f in statistics["features"]]
        if names != spec.model_features:
            raise InputError(f"baseline: statistics.json features {names} are not the spec's model features")
        inputs = Inputs(
            spec=spec,
            statistics=statistics,
            constraints=constraints,
            capture_files=jsonl_files(args.capture),
            label_files=jsonl_files(args.ground_truth),
            evaluation=_evaluation(args.evaluation),
            model=model,
        )
        settings = Settings(
            endpoint=args.endpoint,
            drift_psi=args.drift_psi,
            psi_per_feature=dict(args.psi),
            drift_share_alarm=args.drift_share,
            auc_floor=args.auc_floor,
            threshold=args.threshold,
            window_start=args.window_start,
            window_end=args.window_end,
            attribution_rows=args.attribution_rows,
        )
        return monitor(inputs, settings, args.output)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except (InputError, json.JSONDecodeError, OSError) as err:
        if args.debug:
            traceback.print_exc()
        write_failure("monitor", str(err), processing_message_path())
        return EXIT_INPUT
    except Exception as err:  # the reason must reach SageMaker, and the traceback the log
        traceback.print_exc()
        write_failure("monitor", f"internal error: {type(err).__name__}: {err}", processing_message_path())
        return EXIT_INTERNAL
    drift = summary["drift"]
    print(
        f"monitor: {summary['records']:,} records, {drift['drifted_features']}/{drift['features']} "
        f"features drifted, {summary['data_quality']['violations']} violations, "
        f"{len(summary['alerts'])} alerts -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
