"""Training step as SageMaker runs it: subprocesses, two hosts, SIGTERM."""

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import train_eval_helpers as h
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from pipeline_steps.common.model_io import load_model_dir
from pipeline_steps.common.transform import label_vector

HOSTS = ["algo-1", "algo-2"]
HP = {
    "num_round": "60",
    "max_depth": "4",
    "eta": "0.3",
    "nthread": "1",
    "early_stopping_rounds": "10",
    "scale_pos_weight": "auto",
    "seed": "3",
}


@pytest.fixture(scope="module")
def spec():
    return h.spec()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(root: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline_steps.train", "train"],
        cwd=h.REPO,
        env=h.step_env(root, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "distribution, checkpoints",
    [
        ("FullyReplicated", False),
        ("ShardedByS3Key", False),
        (
            "FullyReplicated",
            True,
        ),  # spot training: every host has a checkpoint folder, none has a checkpoint yet
    ],
)
def test_two_hosts_train_one_model(tmp_path, spec, distribution, checkpoints):
    train = h.make_feature_frame(spec, 4000, seed=11)
    valid = h.make_feature_frame(spec, 1000, seed=12)
    test = h.make_feature_frame(spec, 1000, seed=13)
    roots = {}
    for i, host in enumerate(HOSTS):
        if distribution == "ShardedByS3Key":  # SageMaker hands each host its own files
            host_train, host_valid = train.iloc[i::2], valid.iloc[i::2]
        else:
            host_train, host_valid = train, valid
        roots[host] = h.make_training_root(
            tmp_path / host,
            host_train,
            host_valid,
            HP,
            hosts=HOSTS,
            current_host=host,
            distribution=distribution,
        )
        if checkpoints:
            (roots[host] / "checkpoints").mkdir()
    env = {"SM_TRACKER_HOST": "127.0.0.1", "SM_TRACKER_PORT": str(free_port()), "SM_TRACKER_TIMEOUT": "60"}
    procs = {host: start(roots[host], **env) for host in HOSTS}
    outs = {host: p.communicate(timeout=120) for host, p in procs.items()}
    for host, p in procs.items():
        assert p.returncode == 0, (host, outs[host][1][-3000:])

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
