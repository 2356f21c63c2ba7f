"""python -m pipeline_steps.monitor [options]: one monitoring run (a SageMaker Processing job).

Every path defaults to the processing container's; the same script runs locally with paths.
Findings (drift, violations, alerts) are results, not failures: the job exits 0 and writes
them.  Unusable inputs (no baseline, a spec the baseline does not match) exit 1 with the
reason in /opt/ml/output/message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline_steps.common.feature_spec import SpecError, load_spec
from pipeline_steps.common.model_io import ModelError, load_model_dir, resolve_model_dir
from pipeline_steps.monitor.run import Inputs, Settings, jsonl_files, monitor

PROCESSING = Path(os.environ.get("OPT_ML_ROOT", "/opt/ml")) / "processing"


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
    for name in ("statistics.json", "constraints.json"):
        if not (args.baseline / name).is_file():
            raise ValueError(f"baseline: {args.baseline / name} is missing (preprocess writes it)")
    statistics = json.loads((args.baseline / "statistics.json").read_text())
    constraints = json.loads((args.baseline / "constraints.json").read_text())
    with tempfile.TemporaryDirectory(prefix="model-") as work:
        model = None
        if args.model.exists() and any(args.model.iterdir() if args.model.is_dir() else [args.model]):
            model = load_model_dir(resolve_model_dir(args.model, Path(work)))
        if args.spec:
            spec = load_spec(args.spec)
        elif model is not None:
            spec = model.spec
        else:
            raise ValueError("no feature spec: give --spec or a model (--model) that carries one")
        names = [f["name"] for f in statistics["features"]]
        if names != spec.model_features:
            raise ValueError(f"baseline: statistics.json features {names} are not the spec's model features")
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


def write_message(message: str) -> None:
    path = Path(os.environ.get("OPT_ML_ROOT", "/opt/ml")) / "output" / "message"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message)
    except OSError as err:
        print(f"cannot write {path}: {err}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except (ValueError, SpecError, ModelError, OSError) as err:
        print(f"monitor: {err}", file=sys.stderr)
        write_message(str(err))
        return 1
    drift = summary["drift"]
    print(
        f"monitor: {summary['records']:,} records, {drift['drifted_features']}/{drift['features']} "
        f"features drifted, {summary['data_quality']['violations']} violations, "
        f"{len(summary['alerts'])} alerts -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
