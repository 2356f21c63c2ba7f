"""The monitoring baseline from the training split, in SageMaker Model Monitor's format.

`statistics.json` (version 0.0: dataset.item_count; per feature numerical_statistics with a
KLL distribution, or string_statistics with categorical buckets) and `constraints.json`
(inferred_type, completeness, is_non_negative, string domains, monitoring_config).  Model
Monitor reads them where an account has it; the project's own monitor reads them elsewhere.
Columns: the spec's model features, so the baseline watches exactly what the model sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common import atomic
from pipeline_steps.common.feature_spec import FeatureSpec

KLL_C = 0.64
KLL_K = 2048
BUCKETS = 10  # Model Monitor materialises distributions in 10 buckets


def inferred_type(spec: FeatureSpec, name: str) -> str:
    kind = spec.feature_type(name)
    if kind in ("category", "string", "date"):
        return "String"
    return "Integral" if kind in ("integer", "boolean") else "Fractional"


def _numerical(v: np.ndarray, missing: int) -> dict[str, Any]:
    common = {"num_present": int(len(v)), "num_missing": int(missing)}
    if not len(v):
        return {
            "common": common,
            "mean": 0.0,
            "sum": 0.0,
            "std_dev": 0.0,
            "min": 0.0,
            "max": 0.0,
            "distribution": {
                "kll": {
                    "buckets": [],
                    "sketch": {"parameters": {"c": KLL_C, "k": float(KLL_K)}, "data": [[]]},
                }
            },
        }
    lo, hi = float(v.min()), float(v.max())
    edges = np.linspace(lo, hi, BUCKETS + 1) if hi > lo else np.array([lo, hi])
    counts = np.histogram(v, bins=edges)[0] if hi > lo else np.array([len(v)])
    buckets = [
        {"lower_bound": float(a), "upper_bound": float(b), "count": float(c)}
        for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    # A one-level sketch: up to k evenly spaced quantiles of the sorted values.
    sample = np.sort(v) if len(v) <= KLL_K else np.quantile(v, np.linspace(0, 1, KLL_K))
    return {
        "common": common,
        "mean": float(v.mean()),
        "sum": float(v.sum()),
        "std_dev": float(v.std()),
        "min": lo,
        "max": hi,
        "distribution": {
            "kll": {
                "buckets": buckets,
                "sketch": {
                    "parameters": {"c": KLL_C, "k": float(KLL_K)},
                    "data": [[float(x) for x in sample]],
                },
            }
        },
    }


def _string_statistics(counts: dict[str, int], present: int, missing: int) -> dict[str, Any]:
    return {
        "common": {"num_present": present, "num_missing": missing},
        "distinct_count": float(len(counts)),
        "distribution": {
            "categorical": {"buckets": [{"value": k, "count": float(c)} for k, c in sorted(counts.items())]}
        },
    }


def _string(values: pd.Series) -> dict[str, Any]:
    """The string statistics of one column."""
    counts, missing = _counts(values)
    return _string_statistics(counts, len(values) - missing, missing)


# ---- partial statistics: one per host, merged into one baseline ------------------------------
# A partial holds what adds up exactly (counts, sums, min, max, category counts) and a sample of
# each numeric feature: the values of the SAMPLE rows with the smallest hash of their entity id.
# The sample of a merge is the sample of the merged partials, so it does not depend on how the
# rows were split among hosts; while a feature has at most SAMPLE values it holds all of them,
# and the statistics are exact.  Beyond that, buckets and sketch come from the sample (as Model
# Monitor's come from its KLL sketch) and mean, sum and std from the exact sums.
SAMPLE = 16384
BATCH = 1024 * 1024  # rows read at a time: fewer sample merges, a bounded memory at any size


def _row_hashes(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    found = frame[spec.entity_id] if spec.entity_id in frame.columns else pd.Series(frame.index)
    ids = found.astype("string")
    if ids.isna().any():  # hash_array alone would hash a missing id differently
        return pd.util.hash_pandas_object(ids, index=False).to_numpy(dtype=np.uint64)
    return _text_hashes(ids.to_numpy(dtype=object))


def _text_hashes(ids: np.ndarray) -> np.ndarray:
    """hash_pandas_object's hashes of ids given as an object array of str (none missing), without
    its factorizing first (which only pays off for repeated values; ids do not repeat): 1.28 ->
    0.95 s CPU for the baseline at 1M merchants."""
    return pd.util.hash_array(ids, categorize=False)


def _smallest(hashes: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k entries with the smallest hashes (ties by value), ordered by hash."""
    if len(hashes) > k:
        # Sort only the entries whose hash is at most the k-th smallest (ties included): the same k
        # entries as sorting all of them (at 1M merchants, 3 s of a 25 s preprocess went to the sorts).
        keep = hashes <= np.partition(hashes, k - 1)[k - 1]
        hashes, values = hashes[keep], values[keep]
    order = np.lexsort((values, hashes))[:k]
    return hashes[order], values[order]


@dataclass
class _Batch:
    """Training rows as `partial` adds them up: the id hashes, each numeric feature as float64 (NaN
    where missing or not a number), each string feature's value counts and missing values."""

    rows: int
    hashes: np.ndarray
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    strings: dict[str, tuple[dict[str, int], int]] = field(default_factory=dict)


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _counts(values: pd.Series) -> tuple[dict[str, int], int]:
    s = values.astype("string")
    return {str(k): int(n) for k, n in s.dropna().value_counts().items()}, int(s.isna().sum())


def _from_frame(frame: pd.DataFrame, spec: FeatureSpec) -> _Batch:
    batch = _Batch(len(frame), _row_hashes(frame, spec))
    for name in spec.model_features:
        if inferred_type(spec, name) == "String":
            batch.strings[name] = _counts(frame[name])
        else:
            batch.numbers[name] = _numbers(frame[name])
    return batch


def _from_arrow(table: Any, spec: FeatureSpec) -> _Batch:
    """The same as `_from_frame(table.to_pandas(), spec)`, straight from Arrow where a column's type
    allows: at 1M merchants the pandas conversions were most of the baseline's 1 s of CPU."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(kind: Any) -> bool:
        return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))

    if spec.entity_id not in table.schema.names:
        hashes = _row_hashes(pd.DataFrame(index=range(table.num_rows)), spec)
    elif text(table.schema.field(spec.entity_id).type) and table.column(spec.entity_id).null_count == 0:
        hashes = _text_hashes(table.column(spec.entity_id).to_numpy(zero_copy_only=False))
    else:  # a missing or typed id: hashed as pandas hashes it
        hashes = _row_hashes(table.select([spec.entity_id]).to_pandas(), spec)
    batch = _Batch(table.num_rows, hashes)
    for name in spec.model_features:
        column = table.column(name)
        if inferred_type(spec, name) == "String":
            if text(column.type):
                found = pc.value_counts(column)
                values, counts = found.field("values").to_pylist(), found.field("counts").to_pylist()
                pairs = zip(values, counts, strict=True)
                batch.strings[name] = ({v: int(n) for v, n in pairs if v is not None}, column.null_count)
            else:
                batch.strings[name] = _counts(column.to_pandas())
        elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            batch.numbers[name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        else:
            batch.numbers[name] = _numbers(column.to_pandas())
    return batch


def _partial(batches: Iterable[_Batch], spec: FeatureSpec) -> dict[str, Any]:
    items = 0
    parts: dict[str, dict[str, Any]] = {}
    for batch in batches:
        items += batch.rows
        # At most SAMPLE rows of a batch, by hash (ties included), can enter a feature's sample: one
        # partition finds them for every feature without missing values (one per feature took a
        # third of the baseline's time at 1M merchants).
        hashes = batch.hashes
        within = hashes <= np.partition(hashes, SAMPLE - 1)[SAMPLE - 1] if len(hashes) > SAMPLE else None
        for name in spec.model_features:
            part = parts.setdefault(name, {"present": 0, "missing": 0})
            if name in batch.strings:
                found, missing = batch.strings[name]
                counts = part.setdefault("counts", {})
                for key, n in found.items():
                    counts[key] = counts.get(key, 0) + n
                part["present"] += batch.rows - missing
                part["missing"] += missing
                continue
            raw = batch.numbers[name]
            ok = np.isfinite(raw)
            complete = bool(ok.all())
            v = raw if complete else raw[ok]
            part["present"] += int(len(v))
            part["missing"] += int(len(raw) - len(v))
            if not len(v):
                continue
            part["sum"] = part.get("sum", 0.0) + float(v.sum())
            part["sum_sq"] = part.get("sum_sq", 0.0) + float(np.square(v).sum())
            part["min"] = min(part.get("min", np.inf), float(v.min()))
            part["max"] = max(part.get("max", -np.inf), float(v.max()))
            h, v = (hashes[within], raw[within]) if complete and within is not None else (hashes[ok], v)
            old_h = part.get("hashes", np.empty(0, dtype=np.uint64))
            old_v = part.get("values", np.empty(0, dtype="float64"))
            sample = _smallest(np.concatenate([old_h, h]), np.concatenate([old_v, v]), SAMPLE)
            part["hashes"], part["values"] = sample
    for part in parts.values():  # as JSON holds them
        if "hashes" in part:
            part["hashes"], part["values"] = part["hashes"].tolist(), part["values"].tolist()
    return {"version": 1, "item_count": items, "features": parts}


def partial(frames: Iterable[pd.DataFrame], spec: FeatureSpec) -> dict[str, Any]:
    """Partial statistics of the training rows in `frames` (an iterable of DataFrames)."""
    return _partial((_from_frame(frame, spec) for frame in frames), spec)


def partial_from_arrow(batches: Iterable[Any], spec: FeatureSpec) -> dict[str, Any]:
    """Partial statistics of training rows given as Arrow record batches or tables (with at least
    the id and the model's features)."""
    return _partial((_from_arrow(t, spec) for t in _rebatched(batches, BATCH)), spec)


def _rebatched(batches: Iterable[Any], rows: int) -> Iterator[Any]:
    """Arrow tables of at least `rows` rows (the last one may be short) from smaller batches: an
    engine hands out its own batch size (DuckDB: 122,880 rows), and each batch costs a sample merge."""
    import pyarrow as pa

    held: list[Any] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(held)
            held, count = [], 0
    if held:
        yield pa.Table.from_batches(held)


def columns(spec: FeatureSpec) -> list[str]:
    """The columns the baseline reads: the id (for the sample) and the model's features."""
    return list(dict.fromkeys([spec.entity_id, *spec.model_features]))


def partial_from_file(path: Path, spec: FeatureSpec) -> dict[str, Any]:
    """Partial statistics of a written training split, read in record batches."""
    import pyarrow.parquet as pq  # here: AWS's Spark image, where the Spark engine runs, has no pyarrow

    handle = pq.ParquetFile(path)
    return partial_from_arrow(handle.iter_batches(batch_size=BATCH, columns=columns(spec)), spec)


def merge(partials: list[dict[str, Any]], spec: FeatureSpec) -> dict[str, Any]:
    """One baseline (statistics.json) from the partials of every host; the order does not matter."""
    items = sum(int(p["item_count"]) for p in partials)
    features = []
    for name in spec.model_features:
        kind = inferred_type(spec, name)
        parts = [p["features"].get(name, {}) for p in partials]
        present = sum(int(x.get("present", 0)) for x in parts)
        missing = sum(int(x.get("missing", 0)) for x in parts)
        entry: dict[str, Any] = {"name": name, "inferred_type": kind}
        if kind == "String":
            counts: dict[str, int] = {}
            for x in parts:
                for key, n in x.get("counts", {}).items():
                    counts[key] = counts.get(key, 0) + int(n)
            entry["string_statistics"] = _string_statistics(counts, present, missing)
        else:
            entry["numerical_statistics"] = _merged_numbers(parts, present, missing)
        features.append(entry)
    return {"version": 0.0, "dataset": {"item_count": items}, "features": features}


def _merged_numbers(parts: list[dict[str, Any]], present: int, missing: int) -> dict[str, Any]:
    hashes = np.concatenate([np.asarray(x.get("hashes", []), dtype=np.uint64) for x in parts])
    values = np.concatenate([np.asarray(x.get("values", []), dtype="float64") for x in parts])
    _, sample = _smallest(hashes, values, SAMPLE)
    if present <= SAMPLE:  # the sample is every value: exact
        return _numerical(sample, missing)
    stats = _numerical(sample, missing)
    total = float(sum(x.get("sum", 0.0) for x in parts))
    squares = float(sum(x.get("sum_sq", 0.0) for x in parts))
    lo = min(x["min"] for x in parts if "min" in x)
    hi = max(x["max"] for x in parts if "max" in x)
    mean = total / present
    stats.update(
        common={"num_present": present, "num_missing": missing},
        mean=mean,
        sum=total,
        std_dev=float(np.sqrt(max(squares / present - mean * mean, 0.0))),
        min=lo,
        max=hi,
    )
    edges = np.linspace(lo, hi, BUCKETS + 1) if hi > lo else np.array([lo, hi])
    counts = np.histogram(np.clip(sample, lo, hi), bins=edges)[0] if hi > lo else np.array([len(sample)])
    scaled = _scaled(counts, present)
    stats["distribution"]["kll"]["buckets"] = [
        {"lower_bound": float(a), "upper_bound": float(b), "count": float(c)}
        for a, b, c in zip(edges[:-1], edges[1:], scaled, strict=True)
    ]
    return stats


def _scaled(counts: np.ndarray, total: int) -> list[int]:
    """Sample counts scaled to `total`, whole numbers that add up to it (largest remainders)."""
    exact = counts / max(counts.sum(), 1) * total
    whole = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - whole), kind="stable")[: total - int(whole.sum())]:
        whole[i] += 1
    return [int(x) for x in whole]


def statistics(train: pd.DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    """The baseline of one training frame (the same path as one host's partial, merged)."""
    return merge([partial([train], spec)], spec)


def write_merged(folder: Path, spec: FeatureSpec) -> dict[str, Any]:
    """statistics.json and constraints.json from every `partial-<host>.json` in `folder` (the
    baseline output of a multi-host run)."""
    found = sorted(Path(folder).glob("partial-*.json"))
    if not found:
        raise FileNotFoundError(f"no partial-<host>.json in {folder}")
    stats = merge([json.loads(p.read_text()) for p in found], spec)
    atomic.write_json(Path(folder) / "statistics.json", stats, sort_keys=False)
    atomic.write_json(Path(folder) / "constraints.json", constraints(stats, spec), sort_keys=False)
    return stats


def constraints(stats: dict[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    items = max(int(stats["dataset"]["item_count"]), 1)
    features = []
    for f in stats["features"]:
        block = f.get("numerical_statistics") or f.get("string_statistics")
        entry: dict[str, Any] = {
            "name": f["name"],
            "inferred_type": f["inferred_type"],
            "completeness": block["common"]["num_present"] / items,
        }
        if "numerical_statistics" in f:
            entry["num_constraints"] = {"is_non_negative": bool(f["numerical_statistics"]["min"] >= 0)}
        else:
            entry["string_constraints"] = {"domains": list(spec.column(f["name"]).categories)}
        features.append(entry)
    return {
        "version": 0.0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": 0.1,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": 0.1,
                "categorical_drift_method": "LInfinity",
            },
        },
    }
