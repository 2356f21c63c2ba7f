"""The monitor step end to end on a small trained model: capture files in SageMaker's format
(with corrupt lines and a schema change), late labels, Model Monitor's output formats, EMF."""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import train_eval_helpers as h

from pipeline_steps.common import baseline as bl
from pipeline_steps.common.attribution import monitoring_baseline
from pipeline_steps.common.model_io import load_model_dir
from pipeline_steps.common.transform import model_matrix
from pipeline_steps.monitor.__main__ import main
from pipeline_steps.monitor.emf import NAMESPACE
from pipeline_steps.train.config import Paths, load_cluster
from pipeline_steps.train.trainer import run
from workflow.monitoring.capture_files import capture_line, csv_records, write_capture, write_ground_truth

MM_CHECKS = {
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
}
START = datetime(2026, 11, 30, 0)
SPEC = str(h.SPEC_PATH)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("monitor")
    spec = h.spec()
    train = h.make_feature_frame(spec, 2500, seed=41)
    root = h.make_training_root(
        base / "training",
        train,
        h.make_feature_frame(spec, 600, seed=42),
        {"num_round": "30", "max_depth": "4", "eta": "0.3", "nthread": "1"},
    )
    env = {"OPT_ML_ROOT": str(root)}
    paths = Paths.from_env(env)
    run(paths, load_cluster(paths, env), threading.Event())
    model = load_model_dir(paths.model)
    baseline = base / "baseline"
    baseline.mkdir()
    stats = bl.statistics(train, spec)
    (baseline / "statistics.json").write_text(json.dumps(stats))
    (baseline / "constraints.json").write_text(json.dumps(bl.constraints(stats, spec)))
    test = h.make_feature_frame(spec, 1500, seed=43)
    p_test = model.predict_proba(test)
    evaluation = {
        "model": {"auc": 0.9, "precision": 0.6, "recall": 0.6, "brier": 0.1, "threshold": 0.4},
        "monitoring_baseline": monitoring_baseline(
            model.booster, model_matrix(test, spec), p_test, spec.model_features
        ),
    }
    (base / "evaluation.json").write_text(json.dumps(evaluation))
    return {"base": base, "spec": spec, "model": model, "model_dir": paths.model, "baseline": baseline}


def truth_line(event_id: str, data: str) -> str:
    return json.dumps(
        {"groundTruthData": {"data": data, "encoding": "CSV"}, "eventMetadata": {"eventId": event_id}}
    )


def run_monitor(
    world, capture: Path, labels: Path | None, out: Path, *extra: str, model: bool = True
) -> dict:
    args = [
        "--capture", str(capture),
        "--baseline", str(world["baseline"]),
        "--ground-truth", str(labels or out / "no-labels"),
        "--evaluation", str(world["base"] / "evaluation.json"),
        *(["--model", str(world["model_dir"])] if model else ["--model", str(out / "none"), "--spec", SPEC]),
        "--output", str(out),
        "--endpoint", "mlops-dev-merchant-credit",
        "--attribution-rows", "2000",
        *extra,
    ]  # fmt: skip
    assert main(args) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def drifted_run(world, tmp_path_factory):
    """Normal then drifted traffic, some corrupt lines, a schema change, late labels."""
    base = tmp_path_factory.mktemp("drifted")
    spec, model = world["spec"], world["model"]
    capture = base / "datacapture" / "mlops-dev-merchant-credit" / "AllTraffic"
    normal = h.make_feature_frame(spec, 2000, seed=44)
    drifted = h.make_feature_frame(spec, 2000, seed=45)
    drifted["monthly_revenue"] *= 3.0  # a market shift
    drifted["tenure_months"] = drifted["tenure_months"] + 40
    drifted["region"] = np.where(np.arange(2000) % 3 == 0, "north", drifted["region"])
    normal, drifted = (
        f.drop(columns=spec.derived_names) for f in (normal, drifted)
    )  # requests carry no ratios
    ids = write_capture(
        capture, csv_records(normal, spec), model.predict_proba(h.make_feature_frame(spec, 2000, seed=44)),
        start=START, per_hour=500,
    )  # fmt: skip
    from pipeline_steps.common.transform import add_derived

    drifted_scores = model.predict_proba(add_derived(drifted.copy(), spec))
    ids += write_capture(
        capture, csv_records(drifted, spec), drifted_scores, start=datetime(2026, 11, 30, 4), per_hour=500
    )
    good = csv_records(normal.iloc[:1], spec)[0]
    json_input = json.dumps(
        {"instances": [{"region": "north", "tenure_months": 12, "favourite_color": "red"}]}
    )
    b64 = base64.b64encode(good.encode()).decode()
    at8 = datetime(2026, 11, 30, 8)
    odd = capture / "2026/11/30/08/odd.jsonl"
    odd.parent.mkdir(parents=True)
    lines = [
        "this is not json",
        json.dumps({"eventMetadata": {"eventId": "x"}}),
        capture_line(good + ",extra", 0.2, event_id="schema-1", inference_id=None, when=at8),
        capture_line(good, 1.7, event_id="bad-output", inference_id=None, when=at8),
        json.dumps(
            {
                "captureData": {
                    "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                      "data": json_input, "encoding": "JSON"},
                    "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                       "data": json.dumps({"predictions": [{"probability": 0.3}]}),
                                       "encoding": "JSON"},
                },
                "eventMetadata": {"eventId": "json-1", "inferenceTime": "2026-11-30T08:10:00Z"},
                "eventVersion": "0",
            }
        ),
        json.dumps(
            {
                "captureData": {
                    "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": b64,
                                      "encoding": "BASE64"},
                    "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "0.25,0",
                                       "encoding": "CSV"},
                },
                "eventMetadata": {"eventId": "b64-1", "inferenceTime": "2026-11-30T08:20:00Z"},
                "eventVersion": "0",
            }
        ),
    ]  # fmt: skip
    odd.write_text("\n".join(lines) + "\n")
    labels_dir = base / "ground-truth" / "mlops-dev-merchant-credit"
    truth = list(normal[spec.label]) + list(drifted[spec.label])
    given = [(ids[i], int(truth[i])) for i in range(0, 4000, 2)]  # half the records got labels
    write_ground_truth(labels_dir, given, arrived=datetime(2026, 12, 1, 9))
    extra = labels_dir / "2026/12/01/10/more.jsonl"
    extra.parent.mkdir(parents=True)
    extra.write_text(
        "\n".join(
            [
                truth_line("nobody", "1"),
                truth_line(ids[1], "maybe"),
                json.dumps({"groundTruthData": {"data": "1"}, "eventMetadata": {}}),
                truth_line(ids[0], str(1 - given[0][1])),
                "{broken",
            ]
        )
        + "\n"
    )  # fmt: skip
    out = base / "out"
    summary = run_monitor(
        world, base / "datacapture", base / "ground-truth", out, "--auc-floor", "0.99", "--drift-share", "0.1"
    )
    return {"summary": summary, "out": out, "ids": ids}


def test_counts_add_up_and_corrupt_lines_are_kept_with_reasons(drifted_run):
    s, out = drifted_run["summary"], drifted_run["out"]
    cap = s["capture"]
    assert cap["lines"] == 4006 and s["records"] == 4002  # 4000 + the JSON and BASE64 records
    assert cap["rejected_lines"] == 4 and cap["lines"] == s["records"] + cap["rejected_lines"]
    assert set(cap["rejected_by_reason"]) == {
        "not JSON",
        "not a capture record",
        "schema change",
        "bad endpointOutput",
    }
    rejected = [json.loads(line) for line in (out / "rejected_capture.jsonl").read_text().splitlines()]
    assert len(rejected) == 4 and all(
        r["reason"] and r["text"] and r["file"] == "odd.jsonl" for r in rejected
    )


def test_late_labels_join_by_inference_id_and_bad_ones_are_rejected(drifted_run):
    labels = drifted_run["summary"]["labels"]
    assert labels["matched"] == 1999  # 2000 given, one conflicted away
    assert labels["unknown_inference_ids"] == 1  # "nobody"
    assert labels["rejected_by_reason"] == {
        "label 'maybe' is not an outcome": 1,
        "no eventId": 1,
        "not JSON": 1,
        "conflicting labels": 2,
    }
    rejected = (drifted_run["out"] / "rejected_labels.jsonl").read_text().splitlines()
    assert len(rejected) == 5


def test_drift_found_on_the_shifted_features(drifted_run):
    drift = drifted_run["summary"]["drift"]
    assert {"monthly_revenue", "tenure_months", "region", "request_to_revenue"} <= set(drift["drifted"])
    assert "owner_credit_score" not in drift["drifted"]  # untouched
    assert drift["share"] == pytest.approx(len(drift["drifted"]) / drift["features"])
    assert drift["prediction"] is not None and "psi" in drift["prediction"]
    kinds = {r["feature"]: r["kind"] for r in drift["per_feature"]}
    assert kinds["region"] == "categorical" and kinds["monthly_revenue"] == "numeric"


def test_constraint_violations_in_model_monitors_format(drifted_run):
    doc = json.loads((drifted_run["out"] / "constraint_violations.json").read_text())
    assert set(doc) == {"violations"}
    for v in doc["violations"]:
        assert set(v) == {"feature_name", "constraint_check_type", "description"}
        assert v["constraint_check_type"] in MM_CHECKS
    found = {(v["feature_name"], v["constraint_check_type"]) for v in doc["violations"]}
    assert ("monthly_revenue", "baseline_drift_check") in found
    assert ("captureData", "data_type_check") in found  # the corrupt lines
    assert ("captureData", "extra_column_check") in found  # the CSV record with one cell too many
    assert ("favourite_color", "extra_column_check") in found  # the JSON record's unknown field
    assert ("monthly_revenue", "missing_column_check") in found  # ... which lacked most columns


def test_quality_estimated_and_realized_against_evaluation(drifted_run):
    q = drifted_run["summary"]["quality"]
    assert q["labeled"] == 1999 and q["realized"]["labeled"] == 1999
    assert 0.5 < q["estimated"]["auc"] <= 1 and 0.5 < q["realized"]["auc"] <= 1
    assert q["realized_vs_evaluation"]["auc"]["at_evaluation"] == 0.9
    assert len(q["over_time"]) >= 8
    kinds = {a["kind"] for a in drifted_run["summary"]["alerts"]}
    assert {"drift", "data_quality", "realized_quality"} <= kinds


def test_bias_segments_from_the_spec_and_attributions(drifted_run):
    s = drifted_run["summary"]
    segments = s["bias"]["segments"]
    assert set(segments) == {"region", "size_band"}
    assert {g["segment"] for g in segments["size_band"]["segments"]} <= {
        "0-4",
        "5-19",
        "20-99",
        "100+",
        "<missing>",
    }
    assert 0 < s["bias"]["worst_four_fifths_ratio"] <= 1
    a = s["attribution"]
    assert a["available"] and a["sampled_rows"] == 2000 and 0 <= a["distance"] <= 1


def test_emf_metrics_file(drifted_run):
    lines = (drifted_run["out"] / "metrics.emf.jsonl").read_text().splitlines()
    doc = json.loads(lines[0])
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE and directive["Dimensions"] == [["EndpointName"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"DriftShare", "EstimatedAUC", "RealizedAUC", "DataQualityViolations"} <= names
    assert all(isinstance(doc[n], float) for n in names)
    assert doc["DriftShare"] == pytest.approx(drifted_run["summary"]["drift"]["share"])
    assert doc["EndpointName"] == "mlops-dev-merchant-credit" and isinstance(doc["_aws"]["Timestamp"], int)


def test_report_has_every_section_with_plots(drifted_run):
    page = (drifted_run["out"] / "report.html").read_text()
    for section in (
        "Alerts",
        "Drift",
        "distributions",
        "Model quality",
        "Segments",
        "Attribution",
        "Data quality",
    ):
        assert section in page
    assert page.count("data:image/png;base64,") >= 5


def test_empty_window_is_reported_not_a_crash(world, drifted_run, tmp_path):
    capture = drifted_run["out"].parent / "datacapture"
    window = ["--window-end", "2025-01-01T00:00:00Z", "--window-hours", "24"]
    summary = run_monitor(world, capture, None, tmp_path / "out", *window, model=False)
    assert summary["records"] == 0 and summary["capture"]["outside_window"] == 4004
    # lines without a usable time cannot be placed outside the window: still rejected, still counted
    assert summary["capture"]["rejected_lines"] == 2
    assert [a["kind"] for a in summary["alerts"]] == ["empty_window", "data_quality"]
    assert json.loads((tmp_path / "out" / "metrics.emf.jsonl").read_text())["Records"] == 0.0


def test_window_selects_hours(world, drifted_run, tmp_path):
    capture = drifted_run["out"].parent / "datacapture"
    window = ["--window-end", "2026-11-30T04:00:00Z", "--window-hours", "4"]
    summary = run_monitor(world, capture, None, tmp_path / "out", *window, model=False)
    assert summary["records"] == 2000 and summary["drift"]["drifted_features"] <= 1  # the normal traffic


def test_missing_baseline_fails_with_the_reason(world, tmp_path, monkeypatch):
    monkeypatch.setenv("OPT_ML_ROOT", str(tmp_path))
    code = main(["--baseline", str(tmp_path / "nothing"), "--output", str(tmp_path / "out")])
    assert code == 2  # an input error (the step contract)
    assert "statistics.json is missing" in (tmp_path / "output" / "message").read_text()
