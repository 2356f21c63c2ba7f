"""A trained model directory: load it and score frames with the shared transform.

The training step writes `xgboost-model.json`, `feature_spec.yaml` and `model_meta.json`;
evaluation and the serving container load the directory here, so scoring always goes
through `transform.model_matrix` with the spec the model was trained with.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.contract import DataError
from pipeline_steps.common.feature_spec import FeatureSpec, SpecError, parse_spec
from pipeline_steps.common.transform import model_matrix

MODEL_FILE = "xgboost-model.json"
SPEC_FILE = "feature_spec.yaml"
META_FILE = "model_meta.json"
ARCHIVE = "model.tar.gz"


class ModelError(DataError):
    """The model directory or archive is incomplete or inconsistent; the message names it."""


@dataclass
class LoadedModel:
    booster: Any  # xgboost.Booster
    spec: FeatureSpec
    meta: dict[str, Any]
    path: Path

    def predict_matrix(self, X: np.ndarray) -> np.ndarray:
        """P(positive) for a float32 matrix whose columns are spec.model_features."""
        return np.asarray(self.booster.inplace_predict(X, validate_features=False), dtype=np.float64)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(positive) per row of a frame with the spec's feature columns."""
        return self.predict_matrix(model_matrix(frame, self.spec))


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extracts model.tar.gz safely (no absolute paths, links or `..`) into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise ModelError(f"model archive {archive.name}: cannot extract: {err}") from None
    # Some tools pack the files under one top-level folder.
    if not (dest / MODEL_FILE).exists():
        found = sorted(dest.rglob(MODEL_FILE))
        if len(found) == 1:
            return found[0].parent
    return dest


def resolve_model_dir(path: Path, workdir: Path) -> Path:
    """A model dir, a dir holding model.tar.gz, or the archive itself -> an extracted dir."""
    path = Path(path)
    if path.is_file():
        return extract_archive(path, workdir)
    if not path.is_dir():
        raise ModelError(f"model: {path} does not exist")
    if (path / MODEL_FILE).exists():
        return path
    if (path / ARCHIVE).exists():
        return extract_archive(path / ARCHIVE, workdir)
    archives = sorted(path.glob("*.tar.gz"))
    if len(archives) == 1:
        return extract_archive(archives[0], workdir)
    raise ModelError(f"model: neither {MODEL_FILE} nor {ARCHIVE} in {path}")


def load_model_dir(path: Path | str) -> LoadedModel:
    import xgboost as xgb  # imported here so spec-only users need not load xgboost

    path = Path(path)
    for name in (MODEL_FILE, SPEC_FILE, META_FILE):
        if not (path / name).is_file():
            raise ModelError(f"model: {name} is missing from the model directory")
    try:
        spec = parse_spec((path / SPEC_FILE).read_text(), source=SPEC_FILE)
    except SpecError as err:
        raise ModelError(f"model: {err}") from None
    try:
        meta = json.loads((path / META_FILE).read_text())
    except json.JSONDecodeError as err:
        raise ModelError(f"model: {META_FILE} is not valid JSON: {err}") from None
    if meta.get("feature_names") != spec.model_features:
        raise ModelError(
            f"model: {META_FILE} field 'feature_names' does not match the spec's model_features "
            f"({meta.get('feature_names')} vs {spec.model_features})"
        )
    if meta.get("spec_digest") not in (None, spec.digest):
        raise ModelError(f"model: {META_FILE} field 'spec_digest' does not match {SPEC_FILE}")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path / MODEL_FILE))
    except xgb.core.XGBoostError as err:
        raise ModelError(f"model: {MODEL_FILE} cannot be loaded: {str(err).splitlines()[0]}") from None
    if booster.num_features() != len(spec.model_features):
        raise ModelError(
            f"model: {MODEL_FILE} expects {booster.num_features()} features, "
            f"the spec has {len(spec.model_features)}"
        )
    return LoadedModel(booster=booster, spec=spec, meta=meta, path=path)


def model_threshold(meta: dict[str, Any]) -> float:
    """The decision threshold training chose (0.5 for a model trained before it chose one)."""
    return float((meta.get("decision_threshold") or {}).get("value", 0.5))
