"""The processing step, start to finish: the spec's preparation as SQL on DuckDB.

One host or several (instance_count N): every host reads every input file and owns the rows
whose entity key hashes to it (see `sql/prepare.py`), so N hosts give the same rows as one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline_steps.common import baseline
from pipeline_steps.common.contract import DataError
from pipeline_steps.common.digest import sha256_file
from pipeline_steps.common.feature_spec import FeatureSpec, load_spec
from pipeline_steps.preprocess import files as io
from pipeline_steps.preprocess.sql.plan import Share
from pipeline_steps.preprocess.sql.prepare import Engine, Prepared, prepare


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
    # Every host of the job (resourceconfig.json), in order; empty: this host alone.
    hosts: list[str] = field(default_factory=list)
    # DuckDB's spill folder (made inside; default: the system's temp folder), memory limit, threads.
    scratch: Path | None = None
    memory_limit: str | None = None
    threads: int | None = None

    @property
    def share(self) -> Share:
        if len(self.hosts) <= 1 or self.host not in self.hosts:
            return Share()
        return Share(self.hosts.index(self.host), len(self.hosts))


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


def _cut_dates(cfg: Config) -> tuple[str, str, str] | None:
    if (cfg.validation_start is None) != (cfg.test_start is None):
        raise DataError("--validation-start and --test-start go together: give both or neither")
    if cfg.validation_start is None or cfg.test_start is None:
        return None
    try:
        v, t = pd.Timestamp(cfg.validation_start), pd.Timestamp(cfg.test_start)
    except ValueError as err:
        raise DataError(f"--validation-start/--test-start: not an ISO date: {err}") from err
    if not v < t:
        raise DataError(f"--validation-start {v.date()} must be before --test-start {t.date()}")
    return v.isoformat(), t.isoformat(), "dates"


def run(cfg: Config, engine: Engine | None = None) -> dict[str, Any]:
    """`engine`: the plan's executor (default: DuckDB here; preprocess_spark/spark_main.py passes Spark's)."""
    spec = load_spec(cfg.spec)
    entity_files = io.list_inputs(cfg.entities, "entities")
    if not entity_files:
        raise DataError(
            "entities: input is empty: no CSV or Parquet files found "
            "(with ShardedByS3Key, use at least as many files as instances)"
        )
    history_files = None
    if spec.history:
        if cfg.history is not None and Path(cfg.history).exists():
            history_files = io.list_inputs(cfg.history, "history")
        else:
            raise DataError(
                f"feature spec field 'history': the spec has a history table keyed by '{spec.history.key}', "
                f"but there is no history input at {cfg.history}"
            )
    as_of = None if spec.time_in_data else as_of_time(cfg)
    cuts = _cut_dates(cfg)
    out, share = Path(cfg.output), cfg.share
    if cfg.scratch is not None:  # a spill folder given on the command line may not exist yet
        Path(cfg.scratch).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="preprocess-", dir=cfg.scratch))
    if engine is None:
        from pipeline_steps.preprocess.sql.duckdb_engine import DuckDBEngine

        engine = DuckDBEngine(scratch, cfg.threads, cfg.memory_limit or _default_memory_limit())
    # The inputs' digests (for the report) are read beside the preparation: hashlib and file reads
    # release the GIL, so they take a core the engine leaves idle instead of 0.7 s at the end (1M).
    hashing = ThreadPoolExecutor(max_workers=1)
    hashes = hashing.submit(_input_hashes, entity_files, history_files or [])
    baseline_wanted = share.count > 1 or cfg.first_host

    def write_baseline(partial: dict[str, Any]) -> None:
        _write_baseline(cfg, spec, partial, out)

    try:
        # Schema errors stop the run before any output exists (outputs are written last).
        prepared = prepare(
            engine,
            spec,
            entity_files,
            history_files,
            out,
            cfg.host,
            share,
            write_history_quarantine=share.count > 1 or cfg.first_host,
            as_of=as_of,
            cut_dates=cuts,
            baseline=write_baseline if baseline_wanted else None,
        )
    finally:
        engine.close()
        _remove(scratch)
        hashing.shutdown(wait=True)
    report = _report(cfg, spec, prepared, hashes.result(), as_of)
    report["engine"] = getattr(engine, "name", "duckdb")
    io.write_json(report, out / "report" / f"report-{cfg.host}.json")
    if cfg.first_host:
        io.write_json(report, out / "report" / "report.json")
    return report


def _write_baseline(cfg: Config, spec: FeatureSpec, partial: dict[str, Any], out: Path) -> None:
    """The monitoring baseline of the training split from this host's partial statistics: the partial
    itself when there are several hosts (`baseline.write_merged` makes the one baseline), else the
    first host's statistics and constraints."""
    if cfg.share.count > 1:
        io.write_json(partial, out / "baseline" / f"partial-{cfg.host}.json")
    elif cfg.first_host:
        stats = baseline.merge([partial], spec)
        io.write_json(stats, out / "baseline" / "statistics.json")
        io.write_json(baseline.constraints(stats, spec), out / "baseline" / "constraints.json")


def _default_memory_limit() -> str:
    """Half of the machine's memory: DuckDB spills beyond it instead of growing."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "4GB"
    return f"{max(total // 2 // 2**20, 256)}MB"


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _input_hashes(entity_files: list[Path], history_files: list[Path]) -> dict[str, list[dict[str, str]]]:
    return {"entities": _file_hashes(entity_files), "history": _file_hashes(history_files)}


def _file_hashes(paths: list[Path]) -> list[dict[str, str]]:
    return [{"file": p.name, "sha256": sha256_file(p)} for p in paths]


def _report(
    cfg: Config,
    spec: FeatureSpec,
    prepared: Prepared,
    hashes: dict[str, list[dict[str, str]]],
    as_of: pd.Timestamp | None,
) -> dict[str, Any]:
    joined = "".join(f"{t}/{h['file']}:{h['sha256']}\n" for t in ("entities", "history") for h in hashes[t])
    acc = prepared.accounting
    share = cfg.share
    return {
        "host": cfg.host,
        "first_host": cfg.first_host,
        "share": {"index": share.index, "hosts": share.count},
        "engine": "duckdb",
        "spec": {"name": spec.name, "digest": spec.digest},
        # Read by the pipeline's register step (model lineage).
        "data_sha256": hashlib.sha256(joined.encode()).hexdigest(),
        "inputs": hashes,
        "entities": acc["entities"],
        "history": None
        if "history" not in acc
        else {**acc["history"], "quarantine_written": share.count > 1 or cfg.first_host},
        "split": {**prepared.split, **prepared.summary},
        "generated": {
            "id": None if spec.id_in_data else f"{spec.entity_id} = <file name>:<row number>",
            "event_time": None if as_of is None else f"{as_of.isoformat()}Z (the run's as-of time)",
        },
        "features": spec.feature_names,
        "feature_store": {name: {"records": n} for name, n in prepared.records.items()},
        "baseline_written": "partial" if share.count > 1 else cfg.first_host,
        "seconds": prepared.seconds,
    }
