"""One monitoring run over a window of captured traffic: reads, checks, writes.

Streaming: capture files are read line by line into chunks of CHUNK_ROWS records; per
feature only a quantile sketch, bin counts and running sums are kept, and per record only the
score, label, hour and segment (a few bytes), so memory grows by ~30 bytes per record plus a
bounded sketch, whatever the window's size.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from pipeline_steps.common.atomic import write_json, write_text
from pipeline_steps.common.attribution import mean_abs_contributions
from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.common.transform import add_derived, model_matrix, to_bool_float
from pipeline_steps.monitor import attribution, bias, data_quality, quality
from pipeline_steps.monitor.capture import CaptureReader
from pipeline_steps.monitor.drift import CategoricalDrift, NumericDrift
from pipeline_steps.monitor.emf import emf_lines
from pipeline_steps.monitor.labels import read_labels
from pipeline_steps.monitor.segments import segments_from_spec
from pipeline_steps.monitor.sketch import BaselineDistribution

SUMMARY = "summary.json"
VIOLATIONS = "constraint_violations.json"
REPORT = "report.html"
EMF = "metrics.emf.jsonl"
REJECTED_CAPTURE = "rejected_capture.jsonl"
REJECTED_LABELS = "rejected_labels.jsonl"


@dataclass
class Settings:
    endpoint: str = "endpoint"
    drift_psi: float = 0.2
    psi_per_feature: dict[str, float] = field(default_factory=dict)
    drift_share_alarm: float = 0.3
    estimated_auc_drop_alarm: float = 0.05
    auc_floor: float | None = None
    threshold: float | None = None  # decision threshold; default: the model's, else evaluation's
    window_start: datetime | None = None
    window_end: datetime | None = None
    attribution_rows: int = attribution.DEFAULT_ROWS
    attribution_threshold: float = attribution.DEFAULT_THRESHOLD


@dataclass
class Inputs:
    spec: FeatureSpec
    statistics: dict[str, Any]
    constraints: dict[str, Any]
    capture_files: list[Path]
    label_files: list[Path] = field(default_factory=list)
    evaluation: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # pipeline_steps.common.model_io.LoadedModel


def jsonl_files(folder: Path | None) -> list[Path]:
    if folder is None or not Path(folder).exists():
        return []
    folder = Path(folder)
    return [folder] if folder.is_file() else sorted(p for p in folder.rglob("*.jsonl") if p.is_file())


class _JsonlSink:
    """Rejected lines, appended as they come (kept with their reason)."""

    def __init__(self, path: Path) -> None:
        self.path, self.count = path, 0
        self.handle_: IO[str] | None = None

    def __call__(self, record: dict[str, Any]) -> None:
        if self.handle_ is None:
            self.handle_ = self.path.open("w", encoding="utf-8")
        self.handle_.write(json.dumps(record) + "\n")
        self.count += 1

    def close(self) -> None:
        if self.handle_ is not None:
            self.handle_.close()


def _decision_threshold(inputs: Inputs, settings: Settings) -> float:
    if settings.threshold is not None:
        return settings.threshold
    if inputs.model is not None:
        from pipeline_steps.common.model_io import model_threshold

        return model_threshold(inputs.model.meta)
    return float(inputs.evaluation.get("model", {}).get("threshold", 0.5))


def _accumulators(inputs: Inputs) -> dict[str, NumericDrift | CategoricalDrift]:
    domains = {
        f["name"]: tuple((f.get("string_constraints") or {}).get("domains") or [])
        for f in inputs.constraints.get("features", [])
    }
    out: dict[str, NumericDrift | CategoricalDrift] = {}
    for feature in inputs.statistics["features"]:
        name = feature["name"]
        if "numerical_statistics" in feature:
            block = feature["numerical_statistics"]
            out[name] = NumericDrift(
                name, BaselineDistribution.from_statistics(block), int(block["common"]["num_missing"])
            )
        else:
            block = feature["string_statistics"]
            buckets = block["distribution"]["categorical"]["buckets"]
            out[name] = CategoricalDrift(
                name,
                {b["value"]: float(b["count"]) for b in buckets},
                int(block["common"]["num_missing"]),
                domains.get(name, ()),
            )
    return out


def _prediction_baseline(evaluation: dict[str, Any]) -> NumericDrift | None:
    base = evaluation.get("monitoring_baseline") or {}
    if not base.get("score_quantiles"):
        return None
    return NumericDrift("prediction", BaselineDistribution(base["score_quantiles"], base["score_count"]), 0)


def monitor(inputs: Inputs, settings: Settings, output: Path) -> dict[str, Any]:
    started = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    spec = inputs.spec
    threshold = _decision_threshold(inputs, settings)
    accumulators = _accumulators(inputs)
    prediction = _prediction_baseline(inputs.evaluation)
    invalid: dict[str, dict[str, int]] = {name: {} for name in accumulators}
    segments = segments_from_spec(spec)
    rejected_labels = _JsonlSink(output / REJECTED_LABELS)
    labels = read_labels(inputs.label_files, spec, on_reject=rejected_labels)
    rejected_labels.close()
    rejected_capture = _JsonlSink(output / REJECTED_CAPTURE)
    reader = CaptureReader(
        spec, window=(settings.window_start, settings.window_end), on_reject=rejected_capture
    )
    reservoir = (
        attribution.Reservoir(settings.attribution_rows, len(spec.model_features))
        if inputs.model is not None
        else None
    )
    scores, ys, hours = [], [], []
    # per record only small integers: a segment's code (its labels kept once), the hour
    segment_codes: dict[str, list[np.ndarray]] = {s.name: [] for s in segments}
    segment_labels: dict[str, dict[str, int]] = {s.name: {} for s in segments}
    matched = 0
    for chunk in reader.chunks(inputs.capture_files):
        frame = add_derived(chunk.frame.copy(), spec)
        _add_features(frame, spec, accumulators, invalid)
        if prediction is not None:
            prediction.add(chunk.scores)
        scores.append(chunk.scores.astype(np.float32))
        chunk_labels = np.array([labels.labels.get(k, np.nan) for k in chunk.keys], dtype=np.float32)
        matched += int(np.count_nonzero(~np.isnan(chunk_labels)))
        ys.append(chunk_labels)
        hours.append(chunk.times.astype("datetime64[h]").astype(np.int64).astype(np.int32))
        for s in segments:
            segment_codes[s.name].append(_codes(s.assign(frame[s.column]), segment_labels[s.name]))
        if reservoir is not None:
            reservoir.add(model_matrix(frame, spec))
    rejected_capture.close()

    p: np.ndarray = np.concatenate(scores).astype(np.float64) if scores else np.empty(0)
    y: np.ndarray = np.concatenate(ys).astype(np.float64) if ys else np.empty(0)
    hour = np.concatenate(hours).astype(np.int64) if hours else np.empty(0, dtype=np.int64)
    labeled = ~np.isnan(y)
    records = len(p)

    drift_results = {}
    for name, acc in accumulators.items():
        psi_threshold = settings.psi_per_feature.get(name, settings.drift_psi)
        dist = inputs.constraints.get("monitoring_config", {}).get("distribution_constraints", {})
        if isinstance(acc, NumericDrift):
            drift_results[name] = acc.result(psi_threshold, float(dist.get("comparison_threshold", 0.1)))
        else:
            drift_results[name] = acc.result(
                psi_threshold, float(dist.get("categorical_comparison_threshold", 0.1))
            )
    drifted = [n for n, r in drift_results.items() if r["drifted"]]
    share = len(drifted) / len(drift_results) if drift_results else 0.0
    prediction_result = (
        prediction.result(settings.psi_per_feature.get("prediction", settings.drift_psi), 0.1)
        if prediction is not None and records
        else None
    )
    violations = data_quality.check(
        inputs.constraints,
        drift_results,
        invalid,
        reader.stats,
        int(inputs.statistics["dataset"]["item_count"]),
    )

    est = quality.estimated(p, threshold)
    real = quality.realized(y[labeled], p[labeled], threshold)
    est_on_labeled = quality.estimated(p[labeled], threshold) if labeled.any() else None
    quality_block = {
        "decision_threshold": threshold,
        "labeled": int(labeled.sum()),
        "estimated": est,
        "estimated_on_labeled": est_on_labeled,
        "realized": real,
        "estimated_vs_evaluation": quality.against_evaluation(est, inputs.evaluation),
        "realized_vs_evaluation": quality.against_evaluation(real, inputs.evaluation),
        "over_time": quality.over_time(hour, p, y, threshold),
    }
    bias_block: dict[str, Any] = {"segments": {}}
    for s in segments:
        if records:
            codes = segment_labels[s.name]
            names = np.empty(len(codes), dtype=object)
            for label, code in codes.items():
                names[code] = label
            bias_block["segments"][s.name] = bias.segment_report(
                names[np.concatenate(segment_codes[s.name])], p, y, threshold
            )
    ratios = [r["four_fifths_ratio"] for r in bias_block["segments"].values() if r["four_fifths_ratio"]]
    bias_block["worst_four_fifths_ratio"] = min(ratios) if ratios else None

    attribution_block: dict[str, Any] = {"available": False, "reason": "no model given"}
    if reservoir is not None:
        base = (inputs.evaluation.get("monitoring_baseline") or {}).get("mean_abs_contributions") or {}
        now = mean_abs_contributions(inputs.model.booster, reservoir.sample(), spec.model_features)
        attribution_block = (
            attribution.compare(now, base, settings.attribution_threshold)
            if now
            else {"available": False, "reason": "no records"}
        )
        attribution_block["sampled_rows"] = int(len(reservoir.sample()))

    stats = reader.stats
    summary: dict[str, Any] = {
        "endpoint": settings.endpoint,
        "window": {
            "start": settings.window_start.isoformat() if settings.window_start else None,
            "end": settings.window_end.isoformat() if settings.window_end else None,
            "first_record_hour": _hour_text(hour.min()) if records else None,
            "last_record_hour": _hour_text(hour.max()) if records else None,
        },
        "records": records,
        "capture": {
            "files": stats.files,
            "lines": stats.lines,
            "events": stats.events,
            "rejected_lines": stats.rejected_lines,
            "rejected_by_reason": dict(stats.rejected),
            "outside_window": stats.outside_window,
        },
        "labels": {
            "lines": labels.lines,
            "accepted": len(labels.labels),
            "rejected_lines": labels.rejected_lines,
            "rejected_by_reason": dict(labels.rejected),
            "duplicates": labels.duplicates,
            "matched": matched,
            "unknown_inference_ids": len(labels.labels) - matched,
        },
        "data_quality": {"violations": len(violations), "by_check": _count_checks(violations)},
        "drift": {
            "share": share,
            "drifted_features": len(drifted),
            "features": len(drift_results),
            "drifted": drifted,
            "share_alarm": settings.drift_share_alarm,
            "per_feature": list(drift_results.values()),
            "prediction": prediction_result,
        },
        "quality": quality_block,
        "bias": bias_block,
        "attribution": attribution_block,
        "evaluation": {
            k: inputs.evaluation.get("model", {}).get(k) for k in ("auc", "precision", "recall", "brier")
        },
    }
    summary["alerts"] = alerts(summary, settings)
    summary["seconds"] = time.perf_counter() - started
    write_json(output / VIOLATIONS, {"violations": violations}, indent=2)
    write_text(
        output / EMF,
        "\n".join(emf_lines(summary, settings.endpoint, int(datetime.now(UTC).timestamp() * 1000))) + "\n",
    )
    from pipeline_steps.monitor.report import write_report

    write_report(output / REPORT, summary, accumulators, prediction, violations)
    write_json(output / SUMMARY, summary, indent=2)  # last: its presence means the run finished
    return summary


def _add_features(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    accumulators: dict[str, NumericDrift | CategoricalDrift],
    invalid: dict[str, dict[str, int]],
) -> None:
    for name, acc in accumulators.items():
        if name not in frame.columns:
            frame[name] = np.nan
        column = frame[name]
        bad = invalid[name]
        if isinstance(acc, CategoricalDrift):
            text = column.astype("string").str.strip().replace("", pd.NA)
            acc.add(text)
            if acc.domain:
                known = text.dropna().isin(acc.domain)
                bad["out_of_domain"] = bad.get("out_of_domain", 0) + int((~known).sum())
            continue
        kind = spec.feature_type(name)
        if kind == "boolean":
            values = to_bool_float(column)
        else:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        given = (
            column.notna().to_numpy() & (column.astype("string").str.strip() != "").fillna(False).to_numpy()
        )
        unparseable = int(np.count_nonzero(given & ~np.isfinite(values)))
        if unparseable:
            bad["unparseable"] = bad.get("unparseable", 0) + unparseable
        finite = values[np.isfinite(values)]
        if kind == "integer":
            bad["non_integral"] = bad.get("non_integral", 0) + int(
                np.count_nonzero(finite != np.round(finite))
            )
        bad["negative"] = bad.get("negative", 0) + int(np.count_nonzero(finite < 0))
        acc.add(values)


def _codes(values: np.ndarray, labels: dict[str, int]) -> np.ndarray:
    """Segment labels -> int16 codes, new labels numbered as they appear."""
    unique, inverse = np.unique(values.astype(str), return_inverse=True)
    for label in unique:
        labels.setdefault(str(label), len(labels))
    return np.array([labels[str(u)] for u in unique], dtype=np.int16)[inverse]


def alerts(summary: dict[str, Any], settings: Settings) -> list[dict[str, str]]:
    out = []

    def add(kind: str, message: str) -> None:
        out.append({"kind": kind, "message": message})

    if not summary["records"]:
        add("empty_window", "no usable capture records in the window")
    drift = summary["drift"]
    if drift["share"] > settings.drift_share_alarm:
        add(
            "drift",
            f"{drift['drifted_features']} of {drift['features']} features drifted ({drift['share']:.0%} > "
            f"{settings.drift_share_alarm:.0%}): {', '.join(drift['drifted'])}",
        )
    if drift["prediction"] and drift["prediction"]["drifted"]:
        add("prediction_drift", f"prediction distribution drifted (PSI {drift['prediction']['psi']:.3f})")
    if summary["data_quality"]["violations"]:
        add("data_quality", f"{summary['data_quality']['violations']} data-quality violations")
    q = summary["quality"]
    est = q["estimated_vs_evaluation"].get("auc")
    if est and est["change"] < -settings.estimated_auc_drop_alarm:
        add(
            "estimated_quality", f"estimated AUC {est['now']:.3f} vs {est['at_evaluation']:.3f} at evaluation"
        )
    real = q["realized"]
    if real and settings.auc_floor is not None and real["auc"] < settings.auc_floor:
        add("realized_quality", f"realized AUC {real['auc']:.3f} below the floor {settings.auc_floor}")
    if (
        summary["bias"].get("worst_four_fifths_ratio") is not None
        and summary["bias"]["worst_four_fifths_ratio"] < 0.8
    ):
        add("bias", f"four-fifths ratio {summary['bias']['worst_four_fifths_ratio']:.2f} below 0.8")
    if summary["attribution"].get("drifted"):
        add("attribution_drift", f"attribution profile moved {summary['attribution']['distance']:.3f}")
    return out


def _count_checks(violations: list[dict[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in violations:
        out[v["constraint_check_type"]] = out.get(v["constraint_check_type"], 0) + 1
    return out


def _hour_text(hours_since_epoch: int) -> str:
    return str(np.datetime64(int(hours_since_epoch), "h").astype("datetime64[s]")) + "Z"
