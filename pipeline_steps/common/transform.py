"""Features -> model matrix, the same function in training, evaluation and serving.

Nothing is fitted: category codes come from the spec's category lists, so a model and its
serving container cannot disagree on a column's encoding (no train/serve skew).  Missing and
unknown values become NaN, which XGBoost routes down its learned default branch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import FeatureSpec

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def to_bool_float(values: pd.Series) -> np.ndarray:
    """Booleans given as bool, 0/1 or yes/no text -> 1.0 / 0.0 / NaN."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    text = values.astype("string").str.strip().str.lower()
    out = np.full(len(values), np.nan)
    out[text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = 1.0
    out[text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = 0.0
    return out


def category_codes(values: pd.Series, categories: Iterable[str]) -> np.ndarray:
    """Index of each value in the spec's category list; NaN when missing or unknown."""
    lookup = {c: float(i) for i, c in enumerate(categories)}
    text = values.astype("string")
    return text.map(lookup).astype("float64").fillna(np.nan).to_numpy()


def model_matrix(features: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The float32 matrix whose columns are `spec.model_features`, in that order."""
    missing = [name for name in spec.model_features if name not in features.columns]
    if missing:
        raise ValueError(f"model input is missing feature columns: {missing}")
    out = np.empty((len(features), len(spec.model_features)), dtype=np.float32)
    for j, name in enumerate(spec.model_features):
        kind = spec.feature_type(name)
        column = features[name]
        if kind == "category":
            out[:, j] = category_codes(column, spec.column(name).categories)
        elif kind == "boolean":
            out[:, j] = to_bool_float(column)
        else:
            out[:, j] = pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()
    return out


def add_derived(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Adds the spec's ratio features in place; a zero or missing denominator gives NaN.

    Preprocessing and serving both call this, so a ratio is computed one way only.
    """
    for d in spec.derived:
        num = pd.to_numeric(frame[d.numerator], errors="coerce").astype("float64")
        den = pd.to_numeric(frame[d.denominator], errors="coerce").astype("float64")
        frame[d.name] = (num / den.where(den != 0)).astype("float64")
    return frame


def records_to_frame(records: list[Mapping[str, Any]], spec: FeatureSpec) -> pd.DataFrame:
    """Serving requests (one mapping per row) -> a frame with every model feature column.

    A request carries the entity columns and the history aggregates (from the online
    Feature Store); ratios are derived here exactly as preprocessing derives them.
    """
    frame = pd.DataFrame.from_records(records)
    for name in [c.name for c in spec.columns] + spec.aggregate_names:
        if name not in frame.columns:
            frame[name] = np.nan
    return add_derived(frame, spec)


def label_vector(labels: pd.Series, spec: FeatureSpec) -> np.ndarray:
    """1.0 where the label is one of the spec's positive values, else 0.0."""
    positives = {str(v).strip().lower() for v in spec.positive_labels}
    return labels.astype("string").str.strip().str.lower().isin(positives).to_numpy(dtype=np.float32)
