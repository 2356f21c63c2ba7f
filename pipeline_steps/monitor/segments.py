"""Segments for bias checks, from the feature spec's optional `monitoring.segments` block:

    monitoring:
      segments:
        - {column: region}                                  # a category: one segment per value
        - {column: employees, name: size_band, bands: [0, 5, 20, 100]}   # a number: bands

Bands are lower bounds: `[0, 5, 20, 100]` gives 0-4, 5-19, 20-99 and 100+.  Without the block
every category column of the spec is a segment.  A wrong entry fails with the field named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline_steps.common.feature_spec import FeatureSpec, SpecError

MISSING = "<missing>"


@dataclass(frozen=True)
class Segment:
    name: str
    column: str
    bands: tuple[float, ...] = ()

    def labels(self) -> list[str]:
        if not self.bands:
            return []
        b = self.bands
        out = [f"{_fmt(lo)}-{_fmt(hi - 1)}" for lo, hi in zip(b[:-1], b[1:], strict=True)] + [
            f"{_fmt(b[-1])}+"
        ]
        return [f"<{_fmt(b[0])}"] + out

    def assign(self, values: pd.Series) -> np.ndarray:
        """Segment label per row (object array); missing values get MISSING."""
        if not self.bands:
            text = values.astype("string").str.strip()
            return text.fillna(MISSING).to_numpy(dtype=object)
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        names = np.array(self.labels() + [MISSING], dtype=object)
        index = np.searchsorted(np.asarray(self.bands), numbers, side="right")
        index[~np.isfinite(numbers)] = len(names) - 1
        return names[index]


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def segments_from_spec(spec: FeatureSpec) -> list[Segment]:
    raw = (yaml.safe_load(spec.source_text) or {}).get("monitoring") if spec.source_text else None
    entries: Any = (raw or {}).get("segments") if isinstance(raw, dict) else None
    if entries is None:
        return [Segment(c.name, c.name) for c in spec.columns if c.type == "category"]
    if not isinstance(entries, list):
        raise SpecError(f"monitoring.segments: expected a list, got {entries!r}")
    out = []
    for i, entry in enumerate(entries):
        where = f"monitoring.segments[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("column"), str):
            raise SpecError(f"{where}: expected a mapping with a column name, got {entry!r}")
        column = entry["column"]
        try:
            kind = spec.feature_type(column)
        except KeyError:
            raise SpecError(f"{where}.column: {column!r} is not a column of the spec") from None
        bands = entry.get("bands") or []
        if kind in ("integer", "number"):
            if (
                not bands
                or not all(isinstance(b, (int, float)) for b in bands)
                or sorted(set(bands)) != bands
            ):
                raise SpecError(
                    f"{where}.bands: a numeric column needs increasing numeric bands, got {bands!r}"
                )
        elif bands:
            raise SpecError(f"{where}.bands: only numeric columns take bands ({column} is {kind})")
        out.append(Segment(str(entry.get("name", column)), column, tuple(float(b) for b in bands)))
    return out
