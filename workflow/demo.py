"""`make demo`: the whole model-building workflow on this machine, no AWS, no Docker.

1. generate the merchant credit data (or take yours: --data FILE --spec SPEC),
2. build the pipeline definition, the same JSON CDK deploys,
3. run it with the local runner (cached steps are not run again),
4. print the summary: rows, quarantined, metrics vs baseline, registered version, report,
5. serve the registered version as a local endpoint, score a few merchants through boto3's
   sagemaker-runtime client, show the pipeline's batch transform of the test split, stop;
6. the monitoring loop (workflow/monitoring/demo_loop.py): serve the approved version, send
   normal then drifted traffic, deliver late labels for half of it, run the monitor, print the
   drift and the estimated vs realized quality, fire the retraining trigger (cooldown shown)
   and register the retrained version.  `--no-monitoring` stops after step 5.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from config import REPO_ROOT, load_config
from pipeline_steps.common.atomic import write_json, write_text
from pipeline_steps.common.contract import ConfigError
from pipeline_steps.common.feature_spec import FeatureSpec, load_spec
from workflow.cli import add_debug_flag, run_cli
from workflow.definition.build import (
    EVALUATION_PROPERTY_FILE,
    PREPROCESS_PROPERTY_FILE,
    STEP_EVALUATE,
    STEP_PREPROCESS,
)
from workflow.definition.cached import definition_text
from workflow.definition.environment import settings_for_environment
from workflow.definition.settings import PipelineSettings
from workflow.local_runner.local_values import LOCAL_RAW_BUCKET, local_values
from workflow.local_runner.runner import ExecutionResult, LocalPipelineRunner, fill_placeholders
from workflow.local_runner.storage import LocalS3

PROG = "python -m workflow.demo"


def prepare_data(s3: LocalS3, args: argparse.Namespace, prefix: str) -> dict[str, str]:
    """Puts the input data in the local raw bucket; returns the pipeline parameters for it."""
    base = f"s3://{LOCAL_RAW_BUCKET}/{prefix}"
    if args.data:
        source = Path(args.data)
        if not source.is_file():
            raise ConfigError(f"--data {source}: no such file; expected a CSV or Parquet file")
        s3.put_file(source, f"{base}/entities/{source.name}")
        params = {"EntitiesUri": f"{base}/entities/"}
        if args.history:
            if not Path(args.history).is_file():
                raise ConfigError(f"--history {args.history}: no such file; expected a CSV or Parquet file")
            s3.put_file(Path(args.history), f"{base}/history/{Path(args.history).name}")
            params["HistoryUri"] = f"{base}/history/"
        return params
    from workflow.datasets import merchant_credit

    wanted = {
        "rows": args.rows,
        "seed": args.seed,
        "drift": args.drift,
        "parts": args.parts,
        "generator": _source_digest(Path(merchant_credit.__file__).parent),
    }
    folder = s3.path(base)
    marker = folder / "_generated.json"
    if not (marker.exists() and json.loads(marker.read_text()) == wanted):
        started = time.perf_counter()
        for old in ("entities", "history"):
            for file in (folder / old).glob("*") if (folder / old).exists() else []:
                file.unlink()
        merchant_credit.make(str(folder), args.rows, args.seed, drift=args.drift, parts=args.parts)
        write_json(marker, wanted)
        print(f"generated {args.rows:,} merchants in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return {"EntitiesUri": f"{base}/entities/", "HistoryUri": f"{base}/history/"}


def _source_digest(package: Path) -> str:
    """The generator's code (every module of its package): new code, new data."""
    h = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def code_version() -> str:
    """The commit the run's code comes from (recorded with the registered model)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        sha = git("rev-parse", "--short=12", "HEAD")
        return sha + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unversioned"


def summary(result: ExecutionResult, s3: LocalS3) -> str:
    lines = [f"execution {result.execution_id}: {result.status} in {result.seconds:.1f} s"]
    for record in result.steps.values():
        note = " (cached)" if record.cached else ""
        note += f" -> {record.outcome}" if record.outcome else ""
        lines.append(f"  {record.name:<22} {record.status:<10} {record.seconds:7.1f} s{note}")
    report_file = result.property_files.get(
        f"Steps.{STEP_PREPROCESS}.PropertyFiles.{PREPROCESS_PROPERTY_FILE}"
    )
    if report_file and report_file.exists():
        report = json.loads(report_file.read_text())
        lines.append(_rows_line(report))
    evaluation_file = result.property_files.get(
        f"Steps.{STEP_EVALUATE}.PropertyFiles.{EVALUATION_PROPERTY_FILE}"
    )
    if evaluation_file and evaluation_file.exists():
        ev = json.loads(evaluation_file.read_text())
        lines.append(f"  {'metric':<20}{'model':>10}{'baseline':>10}{'base rate':>11}")
        for key in ("auc", "precision", "recall", "f1", "brier", "latency_ms_per_row"):
            row = [ev.get(part, {}).get(key) for part in ("model", "baseline", "base_rate")]
            lines.append(
                f"  {key:<20}"
                + "".join(f"{v:>10.4f}" if isinstance(v, (int, float)) else f"{'-':>10}" for v in row)
            )
        lines.append(f"  report: {evaluation_file.parent / 'report.html'}")
    if result.registered:
        p = result.registered
        lines.append(
            f"  registered: {p['ModelPackageGroupName']} version {p['ModelPackageVersion']} "
            f"({p['ModelApprovalStatus']})"
        )
    if result.failure:
        lines.append(f"  FAILED at {result.failure.step}: {result.failure.message}")
        if result.failure.log:
            lines.append(f"  log: {result.failure.log}")
    return "\n".join(lines)


def _rows_line(report: dict) -> str:
    lines = []
    for table in ("entities", "history"):
        counts = report.get(table)
        if counts:
            lines.append(
                f"  {table:<9} rows in {counts['rows_in']:>10,} = out {counts['rows_out']:>10,}"
                f" + quarantined {counts['rows_quarantined']:>7,}"
            )
    split = report.get("split") or {}
    parts = [
        f"{name} {split[name]['rows']:,} ({split[name]['first_time']}..{split[name]['last_time']},"
        f" {split[name]['label_rate']:.1%} positive)"
        for name in ("train", "validation", "test")
        if name in split
    ]
    if parts:
        how = (
            f"split at random, stratified by label (seed {split['seed']})"
            if split.get("method") == "stratified_random"
            else "split by time"
        )
        lines.append(f"  {how}: " + "; ".join(parts))
    return "\n".join(lines) or "  (no row counts in the preprocess report)"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="merchants to generate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parts", type=int, default=4, help="files per table the generator writes")
    parser.add_argument("--drift", action="store_true", help="generate drifted data")
    parser.add_argument("--data", help="your own entity table (CSV or Parquet) instead of generated data")
    parser.add_argument("--history", help="your own history table, if your spec has one")
    parser.add_argument("--spec", type=Path, help="feature spec of the data (default: the config's)")
    parser.add_argument("--environment", default="dev", help="config environment whose settings to use")
    parser.add_argument("--root", type=Path, default=REPO_ROOT / ".runs")
    parser.add_argument("--param", action="append", default=[], help="pipeline parameter NAME=VALUE")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--no-monitoring", action="store_true", help="stop after the pipeline run")
    parser.add_argument("--traffic-rows", type=int, default=3000, help="normal and drifted requests each")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    from workflow.local_runner.__main__ import parse_params

    if args.rows < 1 or args.parts < 1:
        parser.error("--rows and --parts must be at least 1")
    args.spec = args.spec or load_config().feature_spec_path
    spec = load_spec(args.spec)
    settings = settings_for_environment(args.environment, spec_name=spec.name)
    s3 = LocalS3(args.root)
    params = prepare_data(s3, args, prefix=spec.name)
    params["CodeVersion"] = code_version()
    params.update(parse_params(args.param))
    text = definition_text(spec, settings)
    definition_file = args.root / "definitions" / f"{settings.pipeline_name}.json"
    write_text(definition_file, text)
    definition = fill_placeholders(text, local_values(s3, args.spec))
    runner = LocalPipelineRunner(
        definition, args.root, pipeline_name=settings.pipeline_name, use_cache=not args.no_cache
    )
    result = runner.run(params)
    print(summary(result, s3))
    print(f"  definition: {definition_file}")
    if result.status != "Succeeded":
        return 1
    if result.registered:
        from workflow.demo_endpoint import serve_and_score

        log_file = args.root / "endpoints" / f"{result.execution_id}.log"
        print("\n".join(serve_and_score(result, s3, spec, log_file)))
    if args.no_monitoring:
        return 0
    if args.data or spec.name != "merchant-credit":
        print("monitoring demo: it generates merchant traffic, so it runs with the generated data only")
        return 0
    return monitoring(args, s3, spec, settings, runner, params)


def monitoring(
    args: argparse.Namespace,
    s3: LocalS3,
    spec: FeatureSpec,
    settings: PipelineSettings,
    runner: LocalPipelineRunner,
    params: dict[str, str],
) -> int:
    """Step 6: the closed loop; retraining runs the same definition on the latest (drifted) data."""
    from config import load_config
    from workflow.monitoring.demo_loop import closed_loop

    latest: dict[str, str] = {}

    def put_latest_data() -> tuple[str, str]:
        """The latest data (the generator's drifted market) lands in the local raw bucket."""
        fresh = argparse.Namespace(**{**vars(args), "drift": True})
        latest.update(prepare_data(s3, fresh, prefix=f"{spec.name}-latest"))
        first = s3.objects(latest["EntitiesUri"])[0][0]
        return LOCAL_RAW_BUCKET, f"{spec.name}-latest/entities/{first}"

    def retrain(reason: str) -> ExecutionResult:
        print(f"retraining on the latest data ({reason}) ...", file=sys.stderr)
        return runner.run({**params, **latest, "TriggerReason": reason})

    print("\nmonitoring loop")
    lines = closed_loop(
        root=args.root,
        repo_root=REPO_ROOT,
        s3=s3,
        spec=spec,
        environment=load_config().environment(args.environment),
        group=settings.model_package_group,
        rows=args.traffic_rows,
        seed=args.seed,
        put_latest_data=put_latest_data,
        retrain=retrain,
    )
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    """0: the execution succeeded; 1: it ran and failed (the summary names the step and why);
    2: an input error (a file, spec, parameter or environment that cannot be used)."""
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
