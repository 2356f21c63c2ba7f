"""Training step as SageMaker runs it: subprocesses, two hosts (run in the background lane), SIGTERM."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import train_eval_helpers as h
import xgboost as xgb
from background_jobs import TWO_HOST_SCENARIOS, two_host_frames
from sklearn.metrics import roc_auc_score

from pipeline_steps.common.model_io import load_model_dir
from pipeline_steps.common.transform import label_vector


@pytest.fixture(scope="module")
def spec():
    return h.spec()


def start(root: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline_steps.train", "train"],
        cwd=h.REPO,
        env=h.step_env(root, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("distribution, checkpoints", TWO_HOST_SCENARIOS)
def test_two_hosts_train_one_model(two_host_training, spec, distribution, checkpoints):
    """FullyReplicated and ShardedByS3Key data, and spot training (every host has a checkpoint
    folder, none has a checkpoint yet).  The two hosts run in the background lane
    (tests/background_jobs.py, `two_host_training`: the same frames, hyperparameters and
    tracker set-up as here); this reads what they wrote."""
    train, _, test = two_host_frames(spec)
    run = two_host_training[(distribution, checkpoints)]
    for host, code in run["returncodes"].items():
        assert code == 0, (host, run["stderr"][host][-3000:])
    tmp_path = run["folder"]

    model_dir = tmp_path / "algo-1" / "model"
    assert (model_dir / "xgboost-model.json").exists()
    assert not (tmp_path / "algo-2" / "model").exists()  # only the first host writes the model
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["hosts"] == 2
    assert meta["train"]["rows"] == 4000 and meta["validation"]["rows"] == 1000  # summed over hosts
    assert meta["train"]["positives"] == int(train[spec.label].sum())
    y = train[spec.label].to_numpy()
    assert meta["scale_pos_weight_used"] == pytest.approx((y == 0).sum() / (y == 1).sum())
    loaded = load_model_dir(model_dir)
    auc = roc_auc_score(label_vector(test[spec.label], spec), loaded.predict_proba(test))
    assert auc > 0.85
    assert (
        xgb.Booster(model_file=str(model_dir / "xgboost-model.json")).num_boosted_rounds()
        == meta["best_iteration"] + 1
    )


def test_sigterm_stops_cleanly_and_checkpoint_resumes(tmp_path, spec):
    hp = {
        "num_round": "100000",
        "max_depth": "2",
        "eta": "0.01",
        "nthread": "1",
        "early_stopping_rounds": "0",
        "checkpoint_interval": "100000",
    }
    root = h.make_training_root(
        tmp_path, h.make_feature_frame(spec, 1000, seed=21), h.make_feature_frame(spec, 300, seed=22), hp
    )
    (root / "checkpoints").mkdir()
    proc = start(root, PYTHONUNBUFFERED="1")
    deadline = time.monotonic() + 60
    for line in proc.stdout:  # wait until boosting rounds are being printed
        if line.startswith("[20]") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err[-2000:]
    reason = (root / "output" / "failure").read_text()
    assert "SIGTERM" in reason
    assert not (root / "model" / "xgboost-model.json").exists()
    # The round it stopped at was checkpointed, so a restarted (spot) job resumes from it.
    rounds = json.loads((root / "checkpoints" / "checkpoint_meta.json").read_text())["rounds"]
    assert 20 < rounds < 100000
    assert f"after {rounds} of 100000 rounds" in reason
