"""The model's probabilities, fast: ONNX Runtime on the converted booster, checked at start.

At start the XGBoost booster is converted to ONNX (onnxmltools) and both score a probe matrix
built from the model's own split thresholds (values on, just below and just above every
split, and missing values).  ONNX Runtime serves only when every probe probability is within
`TOLERANCE` of XGBoost's; otherwise (setting `auto`) the server says so in the log and serves
with XGBoost's `inplace_predict`.  Per-feature contributions always come from XGBoost itself
(`pred_contribs`, SHAP values in log-odds, the last one being the bias).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np

log = logging.getLogger("serve")
TOLERANCE = 1e-6
OUTPUTS = ["probabilities"]
PROBE_ROWS = 512


class PredictorError(ValueError):
    """The model cannot be served as asked; the message says why."""


class Predictor:
    def __init__(self, booster: Any, features: list[str], *, mode: str = "auto", seed: int = 0):
        self.booster = booster
        self.features = features
        self.booster.set_param({"nthread": 1})  # one worker process per core does the parallelism
        self.session: Any = None
        self._run: Any = None
        self.kind = "xgboost"
        self.max_difference: float | None = None
        if mode != "xgboost":
            try:
                plain = _without_names(booster)
                self.session = _onnx_session(plain, len(features))
                # The binding's own run: the Python wrapper's per-call checks (input names,
                # graph capture, fallback providers) cost more than scoring a row, and our one
                # input is always the float32 matrix checked below.
                self._run = getattr(self.session, "_sess", self.session).run
                probe = probe_matrix(plain, len(features), seed)
                diff = float(np.max(np.abs(self._onnx(probe) - self._xgboost(probe))))
                self.max_difference = diff
                if diff > TOLERANCE:
                    raise PredictorError(
                        f"ONNX Runtime differs from XGBoost by {diff:.2e} (> {TOLERANCE:g}) on the probe rows"
                    )
                self.kind = "onnxruntime"
            except Exception as err:  # any conversion failure falls back when allowed
                self.session = None
                if mode == "onnx":
                    raise PredictorError(f"cannot serve with ONNX Runtime: {err}") from err
                log.warning("serving with XGBoost inplace_predict: ONNX Runtime unavailable (%s)", err)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """P(positive) per row of a float32 matrix whose columns are the model's features."""
        if self.session is not None:
            return self._onnx(matrix)
        return self._xgboost(matrix)

    def contributions(self, matrix: np.ndarray) -> list[dict[str, float]]:
        """XGBoost's SHAP contributions per row: {feature: log-odds contribution, "bias": ...}."""
        import xgboost as xgb

        values = self.booster.predict(
            xgb.DMatrix(matrix, missing=np.nan, feature_names=None),
            pred_contribs=True,
            validate_features=False,
        )
        names = [*self.features, "bias"]
        return [dict(zip(names, map(float, row), strict=True)) for row in values]

    def _xgboost(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(matrix, validate_features=False), dtype=np.float64)

    def _onnx(self, matrix: np.ndarray) -> np.ndarray:
        (probabilities,) = self._run(OUTPUTS, {"input": matrix}, None)
        return probabilities[:, 1].astype(np.float64)


def _without_names(booster: Any) -> Any:
    """A copy with f0..fN feature names, as the converter and the dump parser expect."""
    import xgboost as xgb

    plain = xgb.Booster(model_file=bytearray(booster.save_raw("ubj")))
    plain.feature_names = None
    plain.feature_types = None
    return plain


def _onnx_session(plain: Any, n_features: int) -> Any:
    import onnxruntime as ort
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = convert_xgboost(
        plain, initial_types=[("input", FloatTensorType([None, n_features]))], target_opset=15
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def probe_matrix(booster: Any, n_features: int, seed: int = 0) -> np.ndarray:
    """Rows whose values sit on, below and above the model's split thresholds, some missing."""
    rng = np.random.default_rng(seed)
    thresholds: list[list[float]] = [[] for _ in range(n_features)]
    for tree in booster.get_dump(dump_format="json"):
        _collect(json.loads(tree), thresholds)
    probe = np.empty((PROBE_ROWS, n_features), dtype=np.float32)
    for j, values in enumerate(thresholds):
        base = np.asarray(values or [0.0], dtype=np.float32)
        picked = rng.choice(base, PROBE_ROWS)
        nudge = rng.choice(np.array([-1, 0, 1]), PROBE_ROWS)
        below = np.nextafter(picked, np.float32(-np.inf))
        above = np.nextafter(picked, np.float32(np.inf))
        probe[:, j] = np.where(nudge < 0, below, np.where(nudge > 0, above, picked))
    probe[rng.random(probe.shape) < 0.1] = np.nan
    return probe


def _collect(node: dict[str, Any], thresholds: list[list[float]]) -> None:
    if "split" in node:
        split = node["split"]
        index = int(split[1:]) if isinstance(split, str) and split.startswith("f") else None
        if index is not None and 0 <= index < len(thresholds):
            thresholds[index].append(float(node["split_condition"]))
        for child in node.get("children", []):
            _collect(child, thresholds)


def limit_native_threads() -> None:
    """One thread per worker process for OpenMP/BLAS: the processes are the parallelism."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
