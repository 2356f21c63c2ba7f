"""Feature Store records as the runtime API takes them: ISO-8601 event times, FeatureName /
ValueAsString pairs, and the feature group name for a spec group.  Shared by preprocess
(which writes the record files) and the ingest step (which sends them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import FeatureGroup


def iso_times(times: pd.Series) -> pd.Series:
    """datetime64 -> '2023-04-05T00:00:00Z' (Feature Store's ISO-8601 event time)."""
    values = times.to_numpy().astype("datetime64[s]")
    text = pd.Series(np.char.add(np.datetime_as_string(values, unit="s"), "Z"), dtype="string")
    return text.where(~times.isna().to_numpy(), None)


def feature_group_name(prefix: str, group: FeatureGroup) -> str:
    return f"{prefix}-{group.name}" if prefix else group.name


def _value_text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    return str(value)


def to_put_records(records: pd.DataFrame) -> Iterable[list[dict[str, str]]]:
    """Each row as PutRecord's Record: FeatureName/ValueAsString pairs, nulls left out."""
    names = list(records.columns)
    for row in records.itertuples(index=False, name=None):
        yield [
            {"FeatureName": n, "ValueAsString": t}
            for n, v in zip(names, row, strict=True)
            if (t := _value_text(v)) is not None
        ]
