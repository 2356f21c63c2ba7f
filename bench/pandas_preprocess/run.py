"""The processing step, start to finish, for one host's share of the input files."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pandas_preprocess import feature_store, split
from pandas_preprocess.labels import Label
from pandas_preprocess.read import TableInput, read_inputs
from pandas_preprocess.split import Cuts
from pandas_preprocess.validate import Validated, validate
from pipeline_steps.common import baseline
from pipeline_steps.common.contract import DataError
from pipeline_steps.common.digest import sha256_file
from pipeline_steps.common.feature_spec import Column, FeatureSpec, load_spec
from pipeline_steps.common.transform import add_derived, label_vector
from pipeline_steps.preprocess import files as io
from pipeline_steps.preprocess import history


@dataclass
class Config:
    spec: Path
    entities: Path
    history: Path | None
    output: Path
    host: str = "algo-1"
    first_host: bool = True
    validation_start: str | None = None
    test_start: str | None = None
    # Without a time column: the Feature Store event time (the run's as-of time, ISO-8601);
    # empty -> run_started (the pipeline execution's start time).
    as_of_time: str | None = None
    run_started: str | None = None


def _entity_columns(spec: FeatureSpec) -> list[tuple[Column, str]]:
    # A generated id is still checked (role "id"); a missing time column is added after validation.
    given = [(Column(spec.entity_id, "string"), "id")]
    given += [(Column(spec.entity_time, "date"), "time")] if spec.time_in_data else []
    return (
        given
        + [(Column(spec.label, "string"), "label")]
        + [(c, "key" if c.name == spec.entity_key else "column") for c in spec.columns]
    )


def _add_row_ids(inp: TableInput, name: str) -> None:
    """`<file name>:<row number>`: the same row gets the same id on every run and every host."""
    files = np.asarray(inp.files, dtype=object)[inp.source]
    ids = pd.Series(files, dtype="string") + ":" + pd.Series(inp.row_number, dtype="string")
    inp.frame.insert(0, name, ids)


def as_of_time(cfg: Config) -> pd.Timestamp:
    """The run's as-of time (UTC, no zone) for data without a time column."""
    given = cfg.as_of_time or cfg.run_started
    if not given:
        raise DataError(
            "feature spec field 'entity.time' is not set, so the Feature Store event time is the run's "
            "as-of time: give --as-of-time (ISO-8601, e.g. 2026-11-30T00:00:00Z) or --run-started"
        )
    try:
        stamp = pd.Timestamp(given)
    except ValueError as err:
        raise DataError(f"--as-of-time {given!r}: not an ISO-8601 time: {err}") from None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def _history_columns(spec: FeatureSpec) -> list[tuple[Column, str]]:
    h = spec.history
    assert h is not None, "called only for a spec with a history table"
    return [(Column(h.key, "string"), "key"), (Column(h.time, "date"), "time")] + [
        (c, "column") for c in h.columns
    ]


def _accounting(v: Validated) -> dict[str, Any]:
    return {
        "rows_in": v.rows_in,
        "rows_out": v.rows_out,
        "rows_quarantined": v.rows_quarantined,
        "quarantined_by_reason": dict(sorted(v.reasons.items())),
        "duplicates": v.duplicates,
        "invariant_holds": v.rows_in == v.rows_out + v.rows_quarantined,
    }


def _split_summary(frame: pd.DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    times = frame[spec.entity_time]
    labels = label_vector(frame[spec.label], spec) if len(frame) else np.zeros(0)
    return {
        "rows": int(len(frame)),
        "first_time": times.min().date().isoformat() if len(frame) else None,
        "last_time": times.max().date().isoformat() if len(frame) else None,
        "positives": int(labels.sum()),
        "label_rate": float(labels.mean()) if len(frame) else None,
    }


def _file_hashes(paths: list[Path]) -> list[dict[str, str]]:
    return [{"file": p.name, "sha256": sha256_file(p)} for p in paths]


@dataclass
class _Inputs:
    """The validated tables, the files they came from, and (no time column) the as-of time."""

    entities: Validated
    history: Validated | None
    entity_files: list[Path]
    history_files: list[Path]
    as_of: pd.Timestamp | None


def run(cfg: Config) -> dict[str, Any]:
    clock = {"start": time.perf_counter()}
    spec = load_spec(cfg.spec)
    inputs = _read_and_validate(cfg, spec)  # schema errors stop here, before any output exists
    clock["validated"] = time.perf_counter()
    features = _features(inputs, spec)
    clock["features"] = time.perf_counter()
    cuts, parts = _split(cfg, features, spec)
    groups = _write(cfg, spec, inputs, features, parts)
    clock["written"] = time.perf_counter()
    report = _report(cfg, spec, inputs, cuts, parts, groups, clock)
    io.write_json(report, Path(cfg.output) / "report" / f"report-{cfg.host}.json")
    if cfg.first_host:
        io.write_json(report, Path(cfg.output) / "report" / "report.json")
    return report


def _read_and_validate(cfg: Config, spec: FeatureSpec) -> _Inputs:
    max_invalid = spec.max_invalid_fraction
    entity_files = io.list_inputs(cfg.entities, "entities")
    ents_in = read_inputs(entity_files, "entities", spec.column_names)
    if not spec.id_in_data:
        _add_row_ids(ents_in, spec.entity_id)
    as_of = None if spec.time_in_data else as_of_time(cfg)
    ents = validate(
        ents_in, _entity_columns(spec), [spec.entity_id], max_invalid, Label(spec.label, spec.positive_labels)
    )
    if len(ents.label_values) < 2:
        raise DataError(
            f"entities label '{spec.label}': only one class {list(ents.label_values) or '[]'} in "
            f"{ents.rows_out} valid rows; training needs both (positive is {list(spec.positive_labels)})"
        )
    if not spec.history:
        return _Inputs(ents, None, entity_files, [], as_of)
    h = spec.history
    if cfg.history is None or not Path(cfg.history).exists():
        raise DataError(
            f"feature spec field 'history': the spec has a history table keyed by '{h.key}', "
            f"but there is no history input at {cfg.history}"
        )
    history_files = io.list_inputs(cfg.history, "history")
    hist_in = read_inputs(
        history_files,
        "history",
        [h.key, h.time] + [c.name for c in h.columns],
        dictionary_columns=(h.key,),
    )
    hist = validate(hist_in, _history_columns(spec), [h.key, h.time], max_invalid)
    return _Inputs(ents, hist, entity_files, history_files, as_of)


def _features(inputs: _Inputs, spec: FeatureSpec) -> pd.DataFrame:
    """Entity columns (and the as-of time as the entity time), point-in-time aggregates of the
    history, derived ratios."""
    features = inputs.entities.clean
    if inputs.as_of is not None:
        as_of = pd.Series(inputs.as_of, index=features.index, dtype="datetime64[ns]")
        features.insert(1, spec.entity_time, as_of)
    if inputs.history is not None:
        aggs = history.aggregate(features, inputs.history.clean, spec)
        features = pd.concat([features, aggs], axis=1)
    return add_derived(features, spec)


def _split(
    cfg: Config, features: pd.DataFrame, spec: FeatureSpec
) -> tuple[Cuts | None, dict[str, pd.DataFrame]]:
    """By time, or (no time column) seeded and stratified by label."""
    cuts = None
    if spec.time_in_data:
        cuts = split.cut_dates(
            features[spec.entity_time],
            spec.validation_fraction,
            spec.test_fraction,
            cfg.validation_start,
            cfg.test_start,
        )
        which = split.assign(features[spec.entity_time], cuts)
    else:
        which = split.stratified_random_assign(
            features[spec.entity_id],
            label_vector(features[spec.label], spec),
            spec.validation_fraction,
            spec.test_fraction,
            spec.split_seed,
        )
    columns = [spec.entity_id, spec.entity_time, spec.label] + spec.feature_names
    parts = {
        name: features.loc[which == i, columns].reset_index(drop=True) for i, name in enumerate(split.SPLITS)
    }
    return cuts, parts


def _write(
    cfg: Config,
    spec: FeatureSpec,
    inputs: _Inputs,
    features: pd.DataFrame,
    parts: dict[str, pd.DataFrame],
) -> dict[str, Any]:
    """Splits, quarantine, Feature Store records and (first host) the monitoring baseline;
    returns the records written per feature group."""
    out, host = Path(cfg.output), cfg.host
    for name, frame in parts.items():
        io.write_parquet(frame, out / name / f"part-{host}.parquet")
    quarantine = [inputs.entities.quarantine]
    if inputs.history is not None and cfg.first_host:  # history is replicated: its rejects are written once
        quarantine.append(inputs.history.quarantine)
    io.write_parquet(
        pd.concat(quarantine, ignore_index=True) if len(quarantine) > 1 else quarantine[0],
        out / "quarantine" / f"part-{host}.parquet",
    )
    groups: dict[str, Any] = {}
    for group in spec.feature_groups:
        records = feature_store.group_records(features, spec, group)
        io.write_parquet(records, out / "feature_store" / group.name / f"part-{host}.parquet")
        groups[group.name] = {"records": int(len(records))}
    if cfg.first_host:
        stats = baseline.statistics(parts["train"], spec)
        io.write_json(stats, out / "baseline" / "statistics.json")
        io.write_json(baseline.constraints(stats, spec), out / "baseline" / "constraints.json")
    return groups


def _report(
    cfg: Config,
    spec: FeatureSpec,
    inputs: _Inputs,
    cuts: Cuts | None,
    parts: dict[str, pd.DataFrame],
    groups: dict[str, Any],
    clock: dict[str, float],
) -> dict[str, Any]:
    hashes = {"entities": _file_hashes(inputs.entity_files), "history": _file_hashes(inputs.history_files)}
    joined = "".join(f"{t}/{h['file']}:{h['sha256']}\n" for t in ("entities", "history") for h in hashes[t])
    hist, as_of = inputs.history, inputs.as_of
    method = (
        {
            "method": "time",
            "source": cuts.source,
            "validation_start": cuts.validation_start.date().isoformat(),
            "test_start": cuts.test_start.date().isoformat(),
        }
        if cuts is not None
        else {"method": "stratified_random", "seed": spec.split_seed}
    )
    return {
        "host": cfg.host,
        "first_host": cfg.first_host,
        "spec": {"name": spec.name, "digest": spec.digest},
        # Read by the pipeline's register step (model lineage).
        "data_sha256": hashlib.sha256(joined.encode()).hexdigest(),
        "inputs": hashes,
        "entities": _accounting(inputs.entities),
        "history": None if hist is None else {**_accounting(hist), "quarantine_written": cfg.first_host},
        "split": {**method, **{name: _split_summary(frame, spec) for name, frame in parts.items()}},
        "generated": {
            "id": None if spec.id_in_data else f"{spec.entity_id} = <file name>:<row number>",
            "event_time": None if as_of is None else f"{as_of.isoformat()}Z (the run's as-of time)",
        },
        "features": spec.feature_names,
        "feature_store": groups,
        "baseline_written": cfg.first_host,
        "seconds": {
            "validate": round(clock["validated"] - clock["start"], 3),
            "features": round(clock["features"] - clock["validated"], 3),
            "split_and_write": round(clock["written"] - clock["features"], 3),
        },
    }
