"""Training step, in-process: model dir, determinism, early stopping, class weights, failures."""

import json

import numpy as np
import pytest
import train_eval_helpers as h
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from pipeline_steps.common.model_io import load_model_dir
from pipeline_steps.common.transform import label_vector
from pipeline_steps.train.__main__ import main

FAST = {"num_round": "40", "max_depth": "3", "eta": "0.3", "nthread": "1", "early_stopping_rounds": "0"}


@pytest.fixture(scope="module")
def spec():
    return h.spec()


@pytest.fixture(scope="module")
def frames(spec):
    return (
        h.make_feature_frame(spec, 3000, seed=1),
        h.make_feature_frame(spec, 1000, seed=2),
        h.make_feature_frame(spec, 1000, seed=3),
    )


def train_in_process(monkeypatch, root, frames, hp, **kw):
    h.make_training_root(root, frames[0], frames[1], hp, **kw)
    h.in_process_env(monkeypatch, root)
    return main(["train"])


def test_model_dir_contents(monkeypatch, tmp_path, frames, spec):
    assert train_in_process(monkeypatch, tmp_path, frames, FAST) == 0
    model = tmp_path / "model"
    assert sorted(p.name for p in model.iterdir()) == [
        "feature_spec.yaml",
        "model_meta.json",
        "xgboost-model.json",
    ]
    assert (model / "feature_spec.yaml").read_text() == h.SPEC_PATH.read_text()
    meta = json.loads((model / "model_meta.json").read_text())
    assert meta["feature_names"] == spec.model_features
    assert meta["spec_digest"] == spec.digest
    assert meta["xgboost_version"] == xgb.__version__
    assert meta["train"]["rows"] == 3000 and meta["validation"]["rows"] == 1000
    assert meta["train"]["positive_rate"] == pytest.approx(frames[0][spec.label].mean())
    assert meta["validation"]["positive_rate"] == pytest.approx(frames[1][spec.label].mean())
    assert meta["hyperparameters"]["num_round"] == 40 and meta["best_iteration"] == 39
    assert 0.5 < meta["best_score"] <= 1.0
    # xgboost's JSON format, loadable by a bare Booster; the shared loader scores well.
    assert (
        json.loads((model / "xgboost-model.json").read_text())["learner"]["feature_names"]
        == spec.model_features
    )
    loaded = load_model_dir(model)
    test = frames[2]
    assert roc_auc_score(label_vector(test[spec.label], spec), loaded.predict_proba(test)) > 0.8
    assert not (tmp_path / "output" / "failure").exists()


def test_same_data_and_params_give_identical_model_bytes(monkeypatch, tmp_path, frames):
    hp = FAST | {"subsample": "0.8", "colsample_bytree": "0.7", "seed": "42", "nthread": "2"}
    assert train_in_process(monkeypatch, tmp_path / "a", frames, hp) == 0
    assert train_in_process(monkeypatch, tmp_path / "b", frames, hp) == 0
    for name in ("xgboost-model.json", "model_meta.json"):
        assert (tmp_path / "a" / "model" / name).read_bytes() == (
            tmp_path / "b" / "model" / name
        ).read_bytes()
    assert train_in_process(monkeypatch, tmp_path / "c", frames, hp | {"seed": "43"}) == 0
    assert (tmp_path / "c" / "model" / "xgboost-model.json").read_bytes() != (
        tmp_path / "a" / "model" / "xgboost-model.json"
    ).read_bytes()


@pytest.mark.parametrize("metric", ["auc", "logloss"])
def test_early_stopping_stops_and_keeps_the_best_trees(monkeypatch, tmp_path, frames, metric):
    hp = {
        "num_round": "500",
        "max_depth": "6",
        "eta": "0.5",
        "nthread": "1",
        "early_stopping_rounds": "5",
        "eval_metric": metric,
    }
    assert train_in_process(monkeypatch, tmp_path, frames, hp) == 0
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    assert meta["early_stopped"] is True
    assert meta["rounds_run"] == meta["best_iteration"] + 1 + 5
    assert meta["rounds_run"] < 500
    booster = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model.json"))
    assert booster.num_boosted_rounds() == meta["best_iteration"] + 1 == meta["trees_in_model"]


def test_scale_pos_weight_auto_is_negatives_over_positives(monkeypatch, tmp_path, frames, spec):
    assert train_in_process(monkeypatch, tmp_path, frames, FAST | {"scale_pos_weight": "auto"}) == 0
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    y = frames[0][spec.label].to_numpy()
    assert meta["scale_pos_weight_used"] == pytest.approx((y == 0).sum() / (y == 1).sum())
    config = json.loads(xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model.json")).save_config())
    assert float(config["learner"]["objective"]["reg_loss_param"]["scale_pos_weight"]) == pytest.approx(
        meta["scale_pos_weight_used"], rel=1e-6
    )
    assert meta["hyperparameters"]["scale_pos_weight"] == "auto"


def _fails_with(monkeypatch, root, *needles):
    h.in_process_env(monkeypatch, root)
    assert main(["train"]) == 2  # input the step cannot use
    reason = (root / "output" / "failure").read_text()
    for needle in needles:
        assert needle in reason
    assert not (root / "model" / "xgboost-model.json").exists()
    return reason


def test_failure_unknown_hyperparameter(monkeypatch, tmp_path, frames):
    h.make_training_root(tmp_path, frames[0], frames[1], FAST | {"max_dept": "3"})
    _fails_with(monkeypatch, tmp_path, "max_dept", "unknown hyperparameter")


def test_failure_missing_feature_column(monkeypatch, tmp_path, frames):
    h.make_training_root(tmp_path, frames[0].drop(columns=["owner_credit_score"]), frames[1], FAST)
    _fails_with(monkeypatch, tmp_path, "train channel", "owner_credit_score")


def test_failure_one_class_training_labels(monkeypatch, tmp_path, frames, spec):
    train = frames[0].assign(**{spec.label: 0})
    h.make_training_root(tmp_path, train, frames[1], FAST | {"scale_pos_weight": "auto"})
    _fails_with(monkeypatch, tmp_path, "train channel", spec.label, "one class")


def test_failure_empty_validation_and_missing_spec(monkeypatch, tmp_path, frames):
    h.make_training_root(tmp_path / "a", frames[0], frames[1].iloc[:0], FAST)
    _fails_with(monkeypatch, tmp_path / "a", "validation channel", "no rows")
    h.make_training_root(tmp_path / "b", frames[0], frames[1], FAST)
    (tmp_path / "b" / "input" / "data" / "spec" / h.SPEC_PATH.name).unlink()
    _fails_with(monkeypatch, tmp_path / "b", "feature spec")


def test_failure_bad_spec_and_bad_config(monkeypatch, tmp_path, frames):
    bad = h.SPEC_PATH.read_text().replace("type: integer, min: 0, max: 600", "type: int, min: 0, max: 600")
    h.make_training_root(tmp_path / "a", frames[0], frames[1], FAST, spec_text=bad)
    _fails_with(monkeypatch, tmp_path / "a", "columns[3].type")
    h.make_training_root(
        tmp_path / "b", frames[0], frames[1], FAST, hosts=["algo-1", "algo-2"], current_host="algo-3"
    )
    _fails_with(monkeypatch, tmp_path / "b", "current_host")


def test_unexpected_argument_fails(monkeypatch, tmp_path, frames):
    h.make_training_root(tmp_path, frames[0], frames[1], FAST)
    h.in_process_env(monkeypatch, tmp_path)
    assert main(["serve"]) == 2  # an argument the step does not take
    assert "serve" in (tmp_path / "output" / "failure").read_text()


def test_checkpoints_are_written_and_resumed(monkeypatch, tmp_path, frames):
    # Without row/column sampling: a resumed run draws its samples afresh, so only then does it
    # reproduce the uninterrupted model exactly.
    hp = FAST | {"num_round": "30", "checkpoint_interval": "10", "subsample": "1", "colsample_bytree": "1"}
    (tmp_path / "checkpoints").mkdir(parents=True)
    assert train_in_process(monkeypatch, tmp_path, frames, hp) == 0
    ckpt = json.loads((tmp_path / "checkpoints" / "checkpoint_meta.json").read_text())
    assert ckpt["rounds"] == 30
    full = (tmp_path / "model" / "xgboost-model.json").read_bytes()

    # A spot restart: cut the checkpoint back to 20 rounds; training resumes from there.
    booster = xgb.Booster(model_file=str(tmp_path / "checkpoints" / "checkpoint.json"))[:20]
    booster.save_model(str(tmp_path / "checkpoints" / "checkpoint.json"))
    (tmp_path / "model" / "xgboost-model.json").unlink()
    assert main(["train"]) == 0
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    assert meta["resumed_from_round"] == 20 and meta["trees_in_model"] == 30
    resumed = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model.json"))
    X = np.random.default_rng(0).normal(size=(50, len(meta["feature_names"]))).astype(np.float32)
    np.testing.assert_allclose(
        resumed.inplace_predict(X, validate_features=False),
        xgb.Booster(model_file=bytearray(full)).inplace_predict(X, validate_features=False),
        rtol=1e-5,
    )

    # A checkpoint for other hyperparameters is ignored, not resumed.
    assert train_in_process(monkeypatch, tmp_path, frames, hp | {"eta": "0.2"}) == 0
    assert json.loads((tmp_path / "model" / "model_meta.json").read_text())["resumed_from_round"] == 0


def test_decision_threshold_maximises_f1_on_validation():
    import numpy as np
    from sklearn.metrics import f1_score

    from pipeline_steps.train.threshold import f1_threshold

    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.08).astype(np.float32)
    p = np.clip(0.08 + 0.5 * y * rng.random(5000) + 0.1 * rng.standard_normal(5000), 0, 1)
    chosen = f1_threshold(y, p, is_distributed=False)

    def f1_at(t):
        return f1_score(y, p >= t)

    assert chosen["validation_f1"] == pytest.approx(f1_at(chosen["value"]), abs=1e-9)
    # No threshold on a fine grid does better than the chosen bin edge (up to one bin).
    grid_best = max(f1_at(t) for t in np.linspace(0.01, 0.99, 99))
    assert chosen["validation_f1"] >= grid_best - 1e-9
