"""The processing step, start to finish, for one host's share of the input files."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.digest import sha256_file
from pipeline_steps.common.feature_spec import Column, FeatureSpec, load_spec
from pipeline_steps.common.transform import add_derived, label_vector
from pipeline_steps.preprocess import baseline, feature_store, history, split
from pipeline_steps.preprocess import files as io
from pipeline_steps.preprocess.errors import DataError
from pipeline_steps.preprocess.validate import Label, TableInput, Validated, read_inputs, validate


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
    ingest_prefix: str | None = None
    region: str | None = None
    feature_store_client: Any = None  # injected in tests; else boto3's runtime client


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


def run(cfg: Config) -> dict[str, Any]:
    clock = {"start": time.perf_counter()}
    spec = load_spec(cfg.spec)
    max_invalid = spec.max_invalid_fraction

    # ---- read and validate (schema errors stop here, before any output exists) ----------
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
    hist = None
    history_files: list[Path] = []
    if spec.history:
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
        del hist_in
    clock["validated"] = time.perf_counter()

    # ---- features: entity columns, point-in-time aggregates, derived ratios --------------
    features = ents.clean
    if as_of is not None:
        features.insert(1, spec.entity_time, pd.Series(as_of, index=features.index, dtype="datetime64[ns]"))
    if hist is not None:
        aggs = history.aggregate(features, hist.clean, spec)
        features = pd.concat([features, aggs], axis=1)
    features = add_derived(features, spec)
    clock["features"] = time.perf_counter()

    # ---- split: by time, or (no time column) seeded and stratified by label ---------------
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

    # ---- write ----------------------------------------------------------------------------
    out = Path(cfg.output)
    host = cfg.host
    for name, frame in parts.items():
        io.write_parquet(frame, out / name / f"part-{host}.parquet")
    quarantine = [ents.quarantine]
    if hist is not None and cfg.first_host:  # history is replicated: its rejects are written once
        quarantine.append(hist.quarantine)
    io.write_parquet(
        pd.concat(quarantine, ignore_index=True) if len(quarantine) > 1 else quarantine[0],
        out / "quarantine" / f"part-{host}.parquet",
    )
    groups: dict[str, Any] = {}
    client = cfg.feature_store_client
    for group in spec.feature_groups:
        records = feature_store.group_records(features, spec, group)
        io.write_parquet(records, out / "feature_store" / group.name / f"part-{host}.parquet")
        entry: dict[str, Any] = {"records": int(len(records))}
        if cfg.ingest_prefix:
            client = client or feature_store.runtime_client(cfg.region)
            name = feature_store.feature_group_name(cfg.ingest_prefix, group)
            entry["ingested"] = feature_store.ingest(records, name, client)
            entry["feature_group_name"] = name
        groups[group.name] = entry
    if cfg.first_host:
        stats = baseline.statistics(parts["train"], spec)
        io.write_json(stats, out / "baseline" / "statistics.json")
        io.write_json(baseline.constraints(stats, spec), out / "baseline" / "constraints.json")
    clock["written"] = time.perf_counter()

    # ---- report ---------------------------------------------------------------------------
    hashes = {"entities": _file_hashes(entity_files), "history": _file_hashes(history_files)}
    joined = "".join(f"{t}/{h['file']}:{h['sha256']}\n" for t in ("entities", "history") for h in hashes[t])
    data_sha256 = hashlib.sha256(joined.encode()).hexdigest()
    report = {
        "host": host,
        "first_host": cfg.first_host,
        "spec": {"name": spec.name, "digest": spec.digest},
        "data_sha256": data_sha256,  # read by the pipeline's register step (model lineage)
        "data_hash": data_sha256,
        "inputs": hashes,
        "entities": _accounting(ents),
        "history": (
            {**_accounting(hist), "quarantine_written": cfg.first_host} if hist is not None else None
        ),
        "split": {
            **(
                {
                    "method": "time",
                    "source": cuts.source,
                    "validation_start": cuts.validation_start.date().isoformat(),
                    "test_start": cuts.test_start.date().isoformat(),
                }
                if cuts is not None
                else {"method": "stratified_random", "seed": spec.split_seed}
            ),
            **{name: _split_summary(frame, spec) for name, frame in parts.items()},
        },
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
    io.write_json(report, out / "report" / f"report-{host}.json")
    if cfg.first_host:
        io.write_json(report, out / "report" / "report.json")
    return report
