"""The training run: data -> DMatrix (built once, float32) -> xgboost.train -> model dir."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xgboost as xgb

from pipeline_steps.common.atomic import write_bytes
from pipeline_steps.common.contract import DataError
from pipeline_steps.common.feature_spec import FeatureSpec, load_spec
from pipeline_steps.common.model_io import META_FILE, MODEL_FILE, SPEC_FILE
from pipeline_steps.train import distributed, objective
from pipeline_steps.train.config import Cluster, Paths, read_json
from pipeline_steps.train.data import Split, load_split
from pipeline_steps.train.hyperparameters import METRICS, Hyperparameters, parse_hyperparameters
from pipeline_steps.train.threshold import f1_threshold

CHECKPOINT_MODEL = "checkpoint.json"
CHECKPOINT_META = "checkpoint_meta.json"


class StopRequested(RuntimeError):
    """SIGTERM arrived: training stopped at a round boundary."""


@dataclass
class Result:
    booster: xgb.Booster
    best_iteration: int
    best_score: float | None
    rounds: int
    meta: dict[str, Any]


class _StopOnFlag(xgb.callback.TrainingCallback):
    """Ends training at the next round boundary once the flag is set on any host."""

    def __init__(self, flag: threading.Event, is_distributed: bool):
        super().__init__()
        self.flag = flag
        self.is_distributed = is_distributed
        self.stopped = False

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict[str, Any]) -> bool:
        if distributed.any_host(self.flag.is_set(), self.is_distributed):
            self.stopped = True
            return True
        return False


class _Checkpoint(xgb.callback.TrainingCallback):
    """Saves the booster every `interval` rounds (first host only), atomically."""

    def __init__(self, directory: Path, interval: int, key: str, writer: bool, stop: _StopOnFlag):
        super().__init__()
        self.directory, self.interval, self.key, self.writer, self.stop = (
            directory,
            interval,
            key,
            writer,
            stop,
        )

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict[str, Any]) -> bool:
        if self.writer and ((epoch + 1) % self.interval == 0 or self.stop.flag.is_set()):
            save_checkpoint(self.directory, model, self.key)
        return False


def save_checkpoint(directory: Path, booster: xgb.Booster, key: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_bytes(directory / CHECKPOINT_MODEL, bytes(booster.save_raw("json")))
    meta = {"key": key, "rounds": booster.num_boosted_rounds()}
    write_bytes(directory / CHECKPOINT_META, json.dumps(meta).encode())


def load_checkpoint(directory: Path, key: str) -> bytes | None:
    """The checkpointed model's bytes, if one exists for the same spec, params and data."""
    try:
        meta = json.loads((directory / CHECKPOINT_META).read_text())
        raw = (directory / CHECKPOINT_MODEL).read_bytes()
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("key") != key:
        print("checkpoint ignored: it was written for another spec, hyperparameters or data", file=sys.stderr)
        return None
    return raw


def _rate(positives: float, rows: float) -> float:
    return positives / rows if rows else 0.0


def run(paths: Paths, cluster: Cluster, stop_flag: threading.Event) -> Result | None:
    """Trains; returns the result on every host, writes the model dir on the first host."""
    hp = parse_hyperparameters(read_json(paths.hyperparameters, "hyperparameters", default={}))
    spec = load_spec(paths.channel("spec"))
    is_distributed = cluster.size > 1
    with distributed.tracker(cluster):
        # Data first, so a host with bad input fails before the group forms.
        shard = {"rank": cluster.rank, "size": cluster.size}
        train = load_split(
            paths.channel("train"),
            spec,
            channel="train",
            sharded_by_key=cluster.sharded_by_key("train"),
            **shard,
        )
        valid = load_split(
            paths.channel("validation"),
            spec,
            channel="validation",
            sharded_by_key=cluster.sharded_by_key("validation"),
            **shard,
        )
        with distributed.communicator(cluster):
            result = _train(paths, cluster, hp, spec, train, valid, stop_flag, is_distributed)
    if cluster.is_first:
        write_model_dir(paths.model, result, spec)
        # The tuning objective, read from the log by the tuning step's metric regex.
        if result.best_score is not None:
            print(objective.line(hp.eval_metric, result.best_score), flush=True)
    return result


@dataclass(frozen=True)
class _Counts:
    """Rows and positives of both splits, summed over every host."""

    n_train: float
    p_train: float
    n_valid: float
    p_valid: float


def _train(
    paths: Paths,
    cluster: Cluster,
    hp: Hyperparameters,
    spec: FeatureSpec,
    train: Split,
    valid: Split,
    stop_flag: threading.Event,
    is_distributed: bool,
) -> Result:
    counts = _Counts(
        *distributed.allreduce_sum([train.rows, train.positives, valid.rows, valid.positives], is_distributed)
    )
    if counts.p_train == 0 or counts.p_train == counts.n_train:
        raise DataError(
            f"train channel: label '{spec.label}' has one class only "
            f"({int(counts.p_train)} positives in {int(counts.n_train)} rows)"
        )
    if hp.scale_pos_weight == "auto":
        scale_pos_weight = (counts.n_train - counts.p_train) / counts.p_train
    else:
        scale_pos_weight = float(hp.scale_pos_weight)
    params = hp.xgb_params(scale_pos_weight)
    nthread = hp.nthread if hp.nthread > 0 else -1
    dtrain = xgb.DMatrix(train.X, label=train.y, feature_names=spec.model_features, nthread=nthread)
    dvalid = xgb.DMatrix(valid.X, label=valid.y, feature_names=spec.model_features, nthread=nthread)
    if stop_flag.is_set():
        raise StopRequested("stopped by SIGTERM before training started")

    stop = _StopOnFlag(stop_flag, is_distributed)
    callbacks = _early_stopping(hp)
    done, start_model = 0, None
    if paths.checkpoints.is_dir():
        key = hashlib.sha256(
            json.dumps(
                [spec.digest, params, hp.num_round, int(counts.n_train), int(counts.p_train)], sort_keys=True
            ).encode()
        ).hexdigest()
        start_model = _resume(paths, cluster, key, is_distributed)
        done = start_model.num_boosted_rounds() if start_model is not None else 0
        # Order matters: xgboost stops calling callbacks at the first that asks to stop, so the
        # checkpoint comes first and the SIGTERM check (a collective call on every host) last.
        callbacks.insert(
            0, _Checkpoint(paths.checkpoints, hp.checkpoint_interval, key, cluster.is_first, stop)
        )
    callbacks.append(stop)

    evals_result: dict[str, Any] = {}
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=max(hp.num_round - done, 0),
        evals=[(dvalid, "validation")],
        callbacks=callbacks,
        evals_result=evals_result,
        verbose_eval=True,
        xgb_model=start_model,
    )
    rounds = booster.num_boosted_rounds()
    if stop.stopped:
        raise StopRequested(f"stopped by SIGTERM after {rounds} of {hp.num_round} rounds; no model written")
    history = evals_result.get("validation", {}).get(hp.eval_metric, [])
    best_score: float | None
    if hp.early_stopping_rounds > 0 and booster.best_iteration is not None:
        best_iteration, best_score = int(booster.best_iteration), float(booster.best_score)
    else:
        best_iteration, best_score = rounds - 1, (float(history[-1]) if history else None)
    rounds_run = done + len(history)
    meta = {
        **_model_meta(spec, hp, cluster, counts),
        "best_iteration": best_iteration,
        "best_score": best_score,
        "rounds_run": rounds_run,
        "trees_in_model": booster.num_boosted_rounds(),
        "early_stopped": hp.early_stopping_rounds > 0 and rounds_run < hp.num_round,
        "resumed_from_round": done,
        "scale_pos_weight_used": scale_pos_weight,
        "decision_threshold": f1_threshold(valid.y, booster.predict(dvalid), is_distributed),
        "xgboost_params": params,
    }
    return Result(
        booster=booster, best_iteration=best_iteration, best_score=best_score, rounds=rounds, meta=meta
    )


def _early_stopping(hp: Hyperparameters) -> list[xgb.callback.TrainingCallback]:
    if hp.early_stopping_rounds <= 0:
        return []
    return [
        xgb.callback.EarlyStopping(
            rounds=hp.early_stopping_rounds,
            metric_name=hp.eval_metric,
            data_name="validation",
            maximize=METRICS[hp.eval_metric],
            save_best=True,
        )
    ]


def _resume(paths: Paths, cluster: Cluster, key: str, is_distributed: bool) -> xgb.Booster | None:
    """The first host's checkpoint for exactly this training (same key), on every host."""
    raw = load_checkpoint(paths.checkpoints, key) if cluster.is_first else None
    # XGBoost's broadcast cannot carry None: b"" stands for "no checkpoint".
    raw = distributed.broadcast_from_first(raw or b"", is_distributed) or None
    if raw is None:
        return None
    start_model = xgb.Booster(model_file=bytearray(raw))
    print(f"resuming from checkpoint at round {start_model.num_boosted_rounds()}", file=sys.stderr)
    return start_model


def _model_meta(spec: FeatureSpec, hp: Hyperparameters, cluster: Cluster, counts: _Counts) -> dict[str, Any]:
    """What the model is and what it was trained on (the training outcome is added to it)."""
    return {
        "format_version": 1,
        "objective": "binary:logistic",
        "feature_names": list(spec.model_features),
        "label": spec.label,
        "positive_labels": list(spec.positive_labels),
        "spec_name": spec.name,
        "spec_digest": spec.digest,
        "xgboost_version": xgb.__version__,
        "eval_metric": hp.eval_metric,
        "hosts": cluster.size,
        "train": {
            "rows": int(counts.n_train),
            "positives": int(counts.p_train),
            "positive_rate": _rate(counts.p_train, counts.n_train),
        },
        "validation": {
            "rows": int(counts.n_valid),
            "positives": int(counts.p_valid),
            "positive_rate": _rate(counts.p_valid, counts.n_valid),
        },
        "hyperparameters": hp.to_dict(),
    }


def write_model_dir(model_dir: Path, result: Result, spec: FeatureSpec) -> None:
    """xgboost-model.json, feature_spec.yaml (the spec's exact text), model_meta.json."""
    model_dir.mkdir(parents=True, exist_ok=True)
    write_bytes(model_dir / SPEC_FILE, spec.source_text.encode())
    write_bytes(model_dir / META_FILE, (json.dumps(result.meta, indent=2, sort_keys=True) + "\n").encode())
    # The model file last: its presence means the directory is complete.
    write_bytes(model_dir / MODEL_FILE, bytes(result.booster.save_raw("json")))
