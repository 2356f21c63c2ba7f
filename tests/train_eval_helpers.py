"""Shared helpers for the train/evaluate tests and the train overhead benchmark.

`make_feature_frame` builds what the preprocess step writes (entity id, entity time, label,
every feature in spec.feature_names) from the spec alone, deterministically, with a label
that depends on the features so a model has something to learn.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import FeatureSpec, load_spec
from pipeline_steps.common.transform import add_derived

REPO = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO / "workflow" / "specs" / "merchant_credit.yaml"


def spec() -> FeatureSpec:
    return load_spec(SPEC_PATH)


def _numeric(
    rng: np.random.Generator, n: int, lo: float | None, hi: float | None, integer: bool
) -> np.ndarray:
    lo = 0.0 if lo is None else float(lo)
    span = (float(hi) - lo) if hi is not None else 1000.0
    # Skewed values inside [lo, hi], like amounts and counts.
    values = lo + np.minimum(rng.gamma(2.0, 0.08, n), 1.0) * min(span, 1e6)
    return np.floor(values) if integer else values


def make_feature_frame(
    spec: FeatureSpec, n: int, *, seed: int = 0, positive_rate: float = 0.2, missing: float = 0.05
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {
        spec.entity_id: [f"app-{seed}-{i:07d}" for i in range(n)],
        spec.entity_time: (
            pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
        ).strftime("%Y-%m-%d"),
    }
    for c in spec.columns:
        if c.type == "string":
            data[c.name] = [f"m-{k}" for k in rng.integers(0, max(n // 3, 1), n)]
        elif c.type == "category":
            data[c.name] = rng.choice(np.array(c.categories, dtype=object), n)
        elif c.type == "boolean":
            data[c.name] = rng.random(n) < 0.4
        elif c.type == "date":
            data[c.name] = data[spec.entity_time]
        else:
            values = _numeric(rng, n, c.min, c.max, c.type == "integer")
            if c.nullable:
                values[rng.random(n) < missing] = np.nan
            data[c.name] = values
    if spec.history:
        for a in spec.history.aggregates:
            values = _numeric(rng, n, 0, None, a.fn == "count")
            values[rng.random(n) < missing] = np.nan
            data[a.name] = values
    frame = pd.DataFrame(data)
    add_derived(frame, spec)

    # Label: logistic in a few standardised numeric features plus a category effect.
    weights_rng = np.random.default_rng(12345)
    logit = np.zeros(n)
    numeric = [f for f in spec.model_features if spec.feature_type(f) in ("integer", "number")]
    z = []
    # A spec with fewer than 8 numeric features leaves the extra weights unused: not strict.
    for name, w in zip(numeric[:8], weights_rng.normal(0.0, 1.0, 8) * 1.5, strict=False):
        x = frame[name].to_numpy(dtype=np.float64)
        x = np.where(np.isnan(x), np.nanmedian(x), x)
        z.append((x - x.mean()) / (x.std() or 1.0))
        logit += w * z[-1]
    if len(z) >= 2:  # an interaction a linear model cannot express
        logit += 2.5 * ((z[0] > 0.3) & (z[1] > 0.3)) - 1.5 * (np.abs(z[-1]) > 1.2)
    for c in spec.columns:
        if c.type == "category":
            effects = dict(zip(c.categories, weights_rng.normal(0.0, 0.7, len(c.categories)), strict=True))
            logit += frame[c.name].map(effects).to_numpy(dtype=np.float64)
            break
    lo, hi = -20.0, 20.0
    for _ in range(50):  # intercept for the requested positive rate
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + mid)))).mean() < positive_rate:
            lo = mid
        else:
            hi = mid
    p = 1 / (1 + np.exp(-(logit + lo)))
    frame[spec.label] = (rng.random(n) < p).astype(np.int64)
    return frame[[spec.entity_id, spec.entity_time, spec.label] + spec.feature_names]


def write_split(folder: Path, frame: pd.DataFrame, host: str = "algo-1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{host}.parquet"
    frame.to_parquet(path, index=False)
    return path


def make_training_root(
    root: Path,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    hyperparameters: Mapping[str, str] | None = None,
    *,
    hosts: list[str] | None = None,
    current_host: str = "algo-1",
    distribution: str = "FullyReplicated",
    spec_text: str | None = None,
) -> Path:
    """An $OPT_ML_ROOT tree for the training step."""
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters or {})))
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {"current_host": current_host, "hosts": hosts or [current_host], "network_interface_name": "eth0"}
        )
    )
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                ch: {
                    "ContentType": "application/x-parquet",
                    "TrainingInputMode": "File",
                    "S3DistributionType": distribution if ch != "spec" else "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for ch in ("train", "validation", "spec")
            }
        )
    )
    data = root / "input" / "data"
    write_split(data / "train", train)
    write_split(data / "validation", validation)
    (data / "spec").mkdir(parents=True, exist_ok=True)
    (data / "spec" / SPEC_PATH.name).write_text(spec_text if spec_text is not None else SPEC_PATH.read_text())
    return root


def step_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "OPT_ML_ROOT"))}
    env.update({"OPT_ML_ROOT": str(root), "PYTHONPATH": str(REPO)}, **extra)
    return env


def run_step(
    step: str, root: Path, args: list[str] | None = None, **extra_env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"pipeline_steps.{step}", *(args or [])],
        cwd=REPO,
        env=step_env(root, **extra_env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def in_process_env(monkeypatch, root: Path) -> None:
    for key in list(os.environ):
        if key.startswith("SM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OPT_ML_ROOT", str(root))
