"""Evaluation step, end to end on a trained model: evaluation.json, report, error cases."""

import json
import re
import tarfile
import threading

import numpy as np
import pytest
import train_eval_helpers as h
from sklearn import metrics as skm

from pipeline_steps.common.model_io import ModelError, load_model_dir
from pipeline_steps.common.transform import label_vector, model_matrix
from pipeline_steps.evaluate.__main__ import SINGLE_ROW_SAMPLES, main, parse_args
from pipeline_steps.train.config import Paths, load_cluster
from pipeline_steps.train.trainer import run

METRIC_KEYS = {
    "auc",
    "precision",
    "recall",
    "f1",
    "brier",
    "log_loss",
    "threshold",
    "latency_ms_per_row",
    "reliability",
}


@pytest.fixture(scope="module")
def spec():
    return h.spec()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, spec):
    """A trained model (as model.tar.gz), and train/test splits, as the pipeline hands them over."""
    base = tmp_path_factory.mktemp("evaluate")
    train = h.make_feature_frame(spec, 3000, seed=31)
    root = h.make_training_root(
        base / "training",
        train,
        h.make_feature_frame(spec, 800, seed=32),
        {"num_round": "60", "max_depth": "4", "eta": "0.2", "nthread": "1"},
    )
    env = {"OPT_ML_ROOT": str(root)}
    paths = Paths.from_env(env)
    run(paths, load_cluster(paths, env), threading.Event())
    inputs = base / "processing" / "input"
    (inputs / "model").mkdir(parents=True)
    with tarfile.open(inputs / "model" / "model.tar.gz", "w:gz") as tar:
        for f in sorted(paths.model.iterdir()):
            tar.add(f, arcname=f.name)
    h.write_split(inputs / "train", train)
    test = h.make_feature_frame(spec, 1200, seed=33)
    h.write_split(inputs / "test", test.iloc[:600], host="algo-1")
    h.write_split(inputs / "test", test.iloc[600:], host="algo-2")
    (inputs / "spec").mkdir()
    (inputs / "spec" / "spec.yaml").write_text(h.SPEC_PATH.read_text())
    return {"base": base, "model_dir": paths.model, "train": train, "test": test}


@pytest.fixture(scope="module")
def evaluated(workspace):
    mp = pytest.MonkeyPatch()
    mp.setenv("OPT_ML_ROOT", str(workspace["base"]))
    try:
        assert main([]) == 0  # every path from its $OPT_ML_ROOT default
    finally:
        mp.undo()
    out = workspace["base"] / "processing" / "output" / "evaluation"
    return out, json.loads((out / "evaluation.json").read_text())


def test_evaluation_json_keys(evaluated, workspace, spec):
    _, ev = evaluated
    for key in ("model", "baseline", "base_rate"):
        assert set(ev[key]) >= METRIC_KEYS, key
        assert len(ev[key]["reliability"]) == 10
        assert ev[key]["latency_ms_per_row"] >= 0
        assert set(ev[key]["latency_ms_single_row"]) >= {"p50", "p95"}
    y = label_vector(workspace["test"][spec.label], spec)
    assert ev["rows"] == 1200 and ev["positives"] == int(y.sum())
    assert ev["feature_spec_digest"] == spec.digest
    # By default the threshold is the one training chose on validation.
    model = load_model_dir(workspace["model_dir"])
    assert ev["model"]["threshold"] == model.meta["decision_threshold"]["value"]
    assert 0 < ev["model"]["threshold"] < 1


def test_model_metrics_match_sklearn(evaluated, workspace, spec):
    _, ev = evaluated
    test = workspace["test"]
    y = label_vector(test[spec.label], spec)
    p = load_model_dir(workspace["model_dir"]).predict_proba(test)
    pred = p >= ev["model"]["threshold"]
    assert ev["model"]["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert ev["model"]["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert ev["model"]["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert ev["model"]["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert ev["model"]["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert ev["model"]["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert ev["model"]["auc"] > 0.85


def test_baseline_and_base_rate_are_computed(evaluated, workspace, spec):
    _, ev = evaluated
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = workspace["train"], workspace["test"]
    lr = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000))
    lr.fit(model_matrix(train, spec), label_vector(train[spec.label], spec))
    y = label_vector(test[spec.label], spec)
    assert ev["baseline"]["auc"] == pytest.approx(
        skm.roc_auc_score(y, lr.predict_proba(model_matrix(test, spec))[:, 1]), abs=1e-6
    )
    assert 0.6 < ev["baseline"]["auc"] < ev["model"]["auc"]
    assert ev["base_rate"]["auc"] == 0.5
    base = float(label_vector(train[spec.label], spec).mean())
    assert ev["base_rate"]["brier"] == pytest.approx(float(np.mean((base - y) ** 2)))


def test_model_registry_format(evaluated):
    _, ev = evaluated
    m = ev["binary_classification_metrics"]
    for key in ("auc", "precision", "recall", "f1", "accuracy"):
        assert set(m[key]) == {"value", "standard_deviation"}
    assert m["auc"]["value"] == pytest.approx(ev["model"]["auc"])
    assert isinstance(m["auc"]["standard_deviation"], float)  # 1200 rows >= 200
    cm = m["confusion_matrix"]
    assert (
        cm["1"]["1"] == ev["model"]["confusion_matrix"]["tp"]
        and cm["0"]["1"] == ev["model"]["confusion_matrix"]["fp"]
    )
    assert sum(cm[a][b] for a in "01" for b in "01") == ev["rows"]
    roc = m["receiver_operating_characteristic_curve"]
    assert len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) > 2
    pr = m["precision_recall_curve"]
    assert len(pr["precisions"]) == len(pr["recalls"]) > 2


def test_report_references_existing_pngs(evaluated):
    out, ev = evaluated
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == ["calibration.png", "precision_recall.png", "roc.png"]
    for src in sources:
        assert not src.startswith(("/", "http")), src
        assert (out / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{ev['model']['auc']:.4f}" in page and f"{ev['baseline']['auc']:.4f}" in page
    assert ">1200<" in page and ">3000<" in page  # data sizes


def test_extracted_model_dir_and_explicit_paths(tmp_path, workspace):
    inputs = workspace["base"] / "processing" / "input"
    out = tmp_path / "out"
    args = [
        "--model",
        str(workspace["model_dir"]),
        "--test",
        str(inputs / "test"),
        "--train",
        str(inputs / "train"),
        "--feature-spec",
        str(h.SPEC_PATH),
        "--output",
        str(out),
        "--threshold",
        "0.3",
        "--latency-samples",
        "5",
    ]
    assert main(args) == 0
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["model"]["threshold"] == ev["baseline"]["threshold"] == 0.3
    assert not list(out.glob(".*.tmp"))


def test_latency_samples_default_from_the_environment(monkeypatch):
    monkeypatch.delenv("EVALUATE_LATENCY_SAMPLES", raising=False)
    assert parse_args([]).latency_samples == SINGLE_ROW_SAMPLES == 50
    monkeypatch.setenv("EVALUATE_LATENCY_SAMPLES", "7")
    assert parse_args([]).latency_samples == 7
    assert parse_args(["--latency-samples", "3"]).latency_samples == 3  # the argument wins
    monkeypatch.setenv("EVALUATE_LATENCY_SAMPLES", "many")
    with pytest.raises(SystemExit) as exit_info:
        parse_args([])
    assert exit_info.value.code == 2


# ---- bad input -------------------------------------------------------------------------------
def _fails(monkeypatch, tmp_path, workspace, *needles, **overrides):
    inputs = workspace["base"] / "processing" / "input"
    paths = {"model": inputs / "model", "test": inputs / "test", "train": inputs / "train"} | overrides
    monkeypatch.setenv("OPT_ML_ROOT", str(tmp_path))
    args = [a for k, v in paths.items() for a in (f"--{k}", str(v))] + ["--output", str(tmp_path / "out")]
    assert main(args) == 2  # input the step cannot use
    message = (tmp_path / "output" / "message").read_text()
    for needle in needles:
        assert needle in message
    assert not (tmp_path / "out" / "evaluation.json").exists()
    return message


def test_error_empty_test_split(monkeypatch, tmp_path, workspace):
    h.write_split(tmp_path / "test", workspace["test"].iloc[:0])
    _fails(monkeypatch, tmp_path, workspace, "test split", "no rows", test=tmp_path / "test")
    (tmp_path / "none").mkdir()
    _fails(monkeypatch, tmp_path, workspace, "test split", "no .parquet files", test=tmp_path / "none")


def test_error_one_class_test_labels(monkeypatch, tmp_path, workspace, spec):
    h.write_split(tmp_path / "test", workspace["test"].assign(**{spec.label: 0}))
    _fails(monkeypatch, tmp_path, workspace, "test split", spec.label, "one class", test=tmp_path / "test")


def test_error_model_without_spec(monkeypatch, tmp_path, workspace):
    (tmp_path / "model").mkdir()
    with tarfile.open(tmp_path / "model" / "model.tar.gz", "w:gz") as tar:
        for f in sorted(workspace["model_dir"].iterdir()):
            if f.name != "feature_spec.yaml":
                tar.add(f, arcname=f.name)
    _fails(monkeypatch, tmp_path, workspace, "feature_spec.yaml", "missing", model=tmp_path / "model")
    with pytest.raises(ModelError, match="xgboost-model.json"):
        load_model_dir(tmp_path)


def test_error_missing_column_and_other_spec(monkeypatch, tmp_path, workspace, spec):
    h.write_split(tmp_path / "test", workspace["test"].drop(columns=["region"]))
    _fails(monkeypatch, tmp_path, workspace, "test split", "region", test=tmp_path / "test")
    other = tmp_path / "other.yaml"
    other.write_text(h.SPEC_PATH.read_text().replace("months: 3}", "months: 4}", 1))
    _fails(monkeypatch, tmp_path, workspace, "--feature-spec", "differs", **{"feature-spec": other})
