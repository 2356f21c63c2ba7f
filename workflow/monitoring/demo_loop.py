"""`make demo`, after the pipeline: serve the approved version, send normal then drifted
traffic, deliver late labels for part of it, run the monitor, fire the retraining trigger
(cooldown shown) and register the retrained version."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline_steps.common.model_io import extract_archive
from pipeline_steps.serve.capture import capture_files
from workflow.local_runner.endpoint import VARIANT, LocalEndpoint, capture_dir
from workflow.local_runner.local_values import LOCAL_CAPTURE_BUCKET
from workflow.local_runner.registry import LocalModelRegistry
from workflow.local_runner.storage import LocalS3
from workflow.monitoring.loop import FileStore, LocalStarter, deliver_labels, run_monitor, trigger
from workflow.monitoring.traffic import requests_for, send

LABEL_SHARE = 0.5


def closed_loop(
    *,
    root: Path,
    repo_root: Path,
    s3: LocalS3,
    spec: Any,
    environment: Any,
    group: str,
    rows: int,
    seed: int,
    put_latest_data: Callable[[], tuple[str, str]],
    retrain: Callable[[str], Any],
) -> list[str]:
    """Returns the lines to print.  `put_latest_data()` puts the latest (drifted) data in the
    local raw bucket and returns (bucket, key) of one new object; `retrain(reason)` runs the
    pipeline on it and returns its ExecutionResult."""
    out: list[str] = []
    registry = LocalModelRegistry(root / "registry")
    package = registry.latest(group)
    if package is None or not package.get("LocalModelArchive"):
        return [f"monitoring: {group} has no approved version with a model; nothing is served"]
    work = root / "monitoring" / group
    model_dir = extract_archive(
        Path(package["LocalModelArchive"]), work / f"serving-v{package['ModelPackageVersion']}"
    )
    metrics = package["ModelMetrics"]
    evaluation = s3.path(metrics["ModelQuality"]["Statistics"]["S3Uri"])
    baseline = s3.path(metrics["ModelDataQuality"]["Statistics"]["S3Uri"]).parent
    archive = Path(package["LocalModelArchive"])
    version = f"{group}/{package['ModelPackageVersion']}"
    capture = capture_dir(s3) / group / VARIANT  # where the server writes its capture
    labels = s3.path(f"s3://{LOCAL_CAPTURE_BUCKET}/ground-truth/{group}")
    shutil.rmtree(labels, ignore_errors=True)  # the demo's late labels start from a clean prefix

    now = datetime.now(UTC).replace(tzinfo=None)
    normal, normal_truth = requests_for(rows, seed + 101, spec, drift=False)
    drifted, drifted_truth = requests_for(rows, seed + 202, spec, drift=True)
    # The served version through the server of `serve --model` (issue 8), capturing 100 % of
    # requests itself.  The two windows are told apart by the capture's inferenceTime (whole
    # seconds): each starts at a whole second reached after the previous traffic was answered.
    work.mkdir(parents=True, exist_ok=True)
    with (work / "server.log").open("w") as log:
        endpoint = LocalEndpoint(
            archive,
            endpoint_name=group,
            model_version=version,
            capture_dir=capture_dir(s3),
            capture_percent=100.0,
            log=log,
        )
        try:
            endpoint.wait_ready()
            normal_start = _next_second()
            keys_n, _, refused_n = send(endpoint.port, normal, spec)
            drift_start = _next_second()
            keys_d, _, refused_d = send(endpoint.port, drifted, spec)
            drift_end = _next_second()
        finally:
            code = endpoint.stop()  # SIGTERM: the server flushes and renames its capture files
    if code != 0:
        raise RuntimeError(f"the endpoint stopped with exit code {code}; see {work / 'server.log'}")
    refused = refused_n + refused_d
    out.append(
        f"served version {package['ModelPackageVersion']} on 127.0.0.1:{endpoint.port} (capture 100 %): "
        f"{len(keys_n):,} normal then {len(keys_d):,} drifted records in batches of 25; "
        f"{len(refused)} refused by the endpoint (400), e.g. {refused[0] if refused else '-'}"
    )
    since = normal_start.replace(tzinfo=UTC).timestamp()  # earlier runs' files stay in the prefix
    files = [f for f in capture_files(capture_dir(s3), group, VARIANT) if f.stat().st_mtime >= since]
    out.append(
        f"  the server captured them itself: {len(files)} file(s) under {capture}; stopped (exit {code})"
    )
    truth = list(normal_truth) + list(drifted_truth)
    labeled = deliver_labels(labels, keys_n + keys_d, truth, share=LABEL_SHARE, seed=seed, arrived=now)
    out.append(
        f"late labels delivered for {labeled:,} of {len(keys_n) + len(keys_d):,} records (under {labels})"
    )

    t = environment.thresholds
    common = [
        "--capture", str(capture), "--baseline", str(baseline), "--ground-truth", str(labels),
        "--evaluation", str(evaluation), "--model", str(model_dir), "--endpoint", group,
        "--drift-psi", str(t.drift_psi), "--drift-share", str(t.drift_share), "--auc-floor", str(t.auc_floor),
    ]  # fmt: skip
    for name, psi in sorted(t.drift_psi_features.items()):
        common += ["--psi", f"{name}={psi}"]
    stamp = now.strftime("%Y%m%dT%H%M%S")
    # The scheduled monitor runs once per window: first the normal traffic, then the drifted.
    windows = (("normal traffic", normal_start, drift_start), ("drifted traffic", drift_start, drift_end))
    for label, start, end in windows:
        report = work / "runs" / f"{stamp}-{label.split()[0]}"
        arguments = [*common, "--output", str(report)]
        arguments += ["--window-start", start.isoformat(), "--window-end", end.isoformat()]
        summary = run_monitor(repo_root, arguments, report / "monitor.log")
        out.append(f"monitor, window of {label} ({start:%H:%M:%S} to {end:%H:%M:%S} UTC):")
        out += describe(summary, report)
        # The served version's lineage keeps each window's verdict (python -m workflow.lineage).
        registry.record_monitoring_verdict(
            group, int(package["ModelPackageVersion"]), verdict(summary, report, label)
        )

    # What reaches the trigger, in order: new data lands in the raw bucket (S3 -> EventBridge),
    # the alarms that fired (CloudWatch -> EventBridge), then the weekly schedule.
    new_data = put_latest_data()
    events: list[dict[str, Any]] = [
        {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": new_data[0]}, "object": {"key": new_data[1]}},
        }
    ]
    fired = [a["kind"] for a in summary["alerts"]]
    for kind, name in (
        ("drift", "drift-share"),
        ("estimated_quality", "estimated-quality"),
        ("realized_quality", "realized-quality"),
    ):
        if kind in fired:
            events.append(
                {
                    "source": "aws.cloudwatch",
                    "detail-type": "CloudWatch Alarm State Change",
                    "detail": {"alarmName": f"{group}-{name}", "state": {"value": "ALARM"}},
                }
            )
    events.append({"reason": f"schedule: {environment.schedules.retraining}"})
    store = FileStore(work / "retraining")
    store.release(None)  # each demo starts with no cooldown running
    results: dict[str, Any] = {}

    def run(reason: str) -> str:
        results["run"] = retrain(reason)
        return results["run"].execution_id

    cooldown = environment.monitoring.retraining_cooldown_hours
    for n, event in enumerate(events):
        decision = trigger(event, store, LocalStarter(run), cooldown, now + timedelta(minutes=n))
        line = f"retraining trigger '{decision.reason}': {decision.outcome}"
        line += f" ({decision.detail})" if decision.outcome == "suppressed" else ""
        out.append(line)
        if decision.outcome == "started":
            r = results["run"]
            out.append(f"  execution {r.execution_id}: {r.status} in {r.seconds:.1f} s")
            if r.registered:
                p = r.registered
                out.append(
                    f"  registered: {p['ModelPackageGroupName']} version {p['ModelPackageVersion']} "
                    f"({p['ModelApprovalStatus']}), "
                    f"trigger_reason={p['CustomerMetadataProperties']['trigger_reason']!r}"
                )
            elif r.failure:
                out.append(f"  not registered: {r.failure.step}: {r.failure.message}")
    out.append(f"  trigger log: {store.log} (cooldown {cooldown} h)")
    return out


def _next_second(margin: float = 0.5) -> datetime:
    """Waits for the first whole second at least `margin` s away and returns it (naive UTC).
    The server stamps a record when it queues it, just after answering, so the margin keeps
    the last answered record before the boundary."""
    target = math.ceil(time.time() + margin)
    time.sleep(max(0.0, target - time.time()))
    return datetime.fromtimestamp(target, UTC).replace(tzinfo=None)


def verdict(summary: dict[str, Any], report: Path, window: str) -> dict[str, Any]:
    """What the registry keeps of one monitoring run: alert or ok, which alerts, the window."""
    alerts = [a["kind"] for a in summary["alerts"]]
    return {
        "verdict": "alert" if alerts else "ok",
        "alerts": alerts,
        "window": window,
        "records": summary["records"],
        "report": str(report / "report.html"),
    }


def describe(summary: dict[str, Any], report: Path) -> list[str]:
    drift, q = summary["drift"], summary["quality"]
    lines = [
        f"monitor: {summary['records']:,} records, "
        f"{summary['capture']['rejected_lines']} rejected capture lines, "
        f"{summary['labels']['matched']:,} labels matched",
        f"  drift: {drift['drifted_features']} of {drift['features']} features "
        f"({drift['share']:.0%}; alarm above "
        f"{drift['share_alarm']:.0%})",
    ]
    top = sorted((r for r in drift["per_feature"] if r["drifted"]), key=lambda r: -r["psi"])[:6]
    for r in top:
        extra = f"KS {r['ks_statistic']:.3f}" if r["kind"] == "numeric" else f"L-inf {r['linf']:.3f}"
        lines.append(f"    {r['feature']:<24} PSI {r['psi']:6.3f}  {extra}")
    if drift["prediction"]:
        lines.append(f"    {'prediction':<24} PSI {drift['prediction']['psi']:6.3f}")
    lines.append(
        f"  {'quality':<12}{'evaluation':>12}{'estimated':>12}{'realized':>12}"
        f"   (realized on {q['labeled']:,} labels)"
    )
    for key in ("auc", "precision", "recall"):
        row = [
            summary["evaluation"].get(key),
            (q["estimated"] or {}).get(key),
            (q["realized"] or {}).get(key),
        ]
        lines.append(
            f"  {key:<12}" + "".join(f"{v:>12.4f}" if isinstance(v, float) else f"{'-':>12}" for v in row)
        )
    bias = summary["bias"]
    if bias.get("worst_four_fifths_ratio") is not None:
        lines.append(f"  bias: worst four-fifths ratio {bias['worst_four_fifths_ratio']:.2f}")
    if summary["attribution"].get("available"):
        lines.append(f"  attribution drift: {summary['attribution']['distance']:.3f}")
    lines.append(
        f"  data-quality violations: {summary['data_quality']['violations']} "
        f"{json.dumps(summary['data_quality']['by_check'])}"
    )
    lines += [f"  ALERT {a['kind']}: {a['message']}" for a in summary["alerts"]]
    lines.append(f"  report: {report / 'report.html'}")
    return lines
