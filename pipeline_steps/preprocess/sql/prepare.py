"""The preparation, start to finish, over any engine that runs the plan's SQL.

Every host reads every input file (reading is cheap) and validates and de-duplicates every
entity (the entity table is small), so all hosts agree on which entities are kept, on the
time-split cut dates and on the stratified split.  The expensive work (the history's
validation, de-duplication and point-in-time aggregates, and the outputs) is done only for the
host's share: the rows whose entity key hashes to it, so the duplicates of a key and the
history of an entity are always on the same host.  One host or N give the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from pipeline_steps.common import baseline as data_baseline
from pipeline_steps.common.contract import DataError
from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.preprocess.sql import checks, plan
from pipeline_steps.preprocess.sql.plan import SPLITS, Functions, Share, TablePlan, q


class Engine(Protocol):
    functions: Functions

    def read_table(self, table: str, paths: list[Path], expected: list[str]) -> dict[str, str]: ...
    def view(self, name: str, sql: str) -> None: ...
    def table(self, name: str, sql: str) -> None: ...
    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...
    def write_all(
        self, outputs: Sequence[tuple[str, Path]], on_written: Callable[[Path], None] | None = None
    ) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class StreamingEngine(Engine, Protocol):
    """An engine that hands out a query's rows as Arrow batches, also while it writes (DuckDB)."""

    def arrow_batches(self, sql: str) -> Iterator[Any]: ...
    def write_all(
        self,
        outputs: Sequence[tuple[str, Path]],
        on_written: Callable[[Path], None] | None = None,
        beside: Sequence[Callable[[], None]] = (),
    ) -> None: ...


@dataclass
class Prepared:
    """What the report needs from a run."""

    accounting: dict[str, dict[str, Any]]
    label_values: dict[str, int]
    split: dict[str, Any]  # method and its parameters
    summary: dict[str, dict[str, Any]]  # per split
    records: dict[str, int]  # Feature Store records per group
    seconds: dict[str, float] = field(default_factory=dict)


def validate_table(engine: Engine, p: TablePlan, max_invalid: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Creates <t>_candidates, <t>_flagged, <t>_bad, <t>_involved, <t>_dups and <t>_kept; returns
    (stats, accounting)."""
    t = p.table
    # The entities that may repeat a key (one grouping over two columns), then every check once,
    # for the rows some check suspects (a few percent) and the candidates' rows, in one scan.
    engine.table(f"{t}_candidates", p.candidates_sql())
    engine.table(f"{t}_flagged", p.flagged_sql())
    stats = p.stats(engine.rows(p.stats_sql()), engine.rows(p.totals_sql())[0])
    if int(stats["rows"]) == 0:
        raise DataError(f"{t}: input is empty: 0 rows")

    def examples(code: str) -> list[str]:
        return checks.first_unique([r[0] for r in engine.rows(p.examples_sql(code))])

    def nulls(name: str) -> int:
        return int(engine.rows(p.nulls_sql(name))[0][0] or 0)

    checks.schema_checks(p, stats, max_invalid, examples, nulls)
    engine.view(f"{t}_bad", p.bad_sql())
    (involved_name, involved_sql), (dups_name, dups_sql) = p.dup_statements()
    engine.view(involved_name, involved_sql)
    engine.table(dups_name, dups_sql)
    # The entities are kept as a table (read several times); the history's kept rows are a view,
    # read once by the aggregates.
    (engine.table if p.whole else engine.view)(f"{t}_kept", p.kept_sql())
    by_reason: dict[str, int] = {}
    for source in (f"{t}_bad", f"{t}_dups"):
        for code, n in engine.rows(f"SELECT _code, count(*) FROM {source} WHERE _mine GROUP BY _code"):
            by_reason[code] = by_reason.get(code, 0) + int(n)
    dups = {"exact": by_reason.get("exact_duplicate", 0), "key": 0}
    dups["key"] = sum(n for code, n in by_reason.items() if code.startswith("duplicate_key:"))
    if not p.whole:  # the kept rows are a view read once, by the aggregates: not counted separately
        rows_out = int(stats["mine"]) - sum(by_reason.values())
    else:
        (rows_out,) = engine.rows(f"SELECT count(*) FROM {t}_kept WHERE _mine")[0]
    acc = checks.accounting(t, int(stats["mine"]), int(rows_out), by_reason, dups)
    return stats, acc


def prepare(
    engine: Engine,
    spec: FeatureSpec,
    entity_files: list[Path],
    history_files: list[Path] | None,
    out: Path,
    host: str,
    share: Share,
    write_history_quarantine: bool,
    as_of: pd.Timestamp | None,
    cut_dates: tuple[str, str, str] | None,
    baseline: Callable[[dict[str, Any]], None] | None = None,
) -> Prepared:
    """`cut_dates`: (validation_start, test_start, source) given on the command line, else None;
    `baseline(partial)`: given the partial statistics of this host's training rows (see
    `data_baseline.partial`) while the outputs are written."""
    import time

    clock = [time.perf_counter()]
    max_invalid = spec.max_invalid_fraction
    kinds = engine.read_table("entities", entity_files, spec.column_names)
    ent = plan.entity_plan(spec, kinds, share, engine.functions)
    profile = [(str(v), int(n)) for v, n in engine.rows(ent.label_profile_sql())]
    ent.label, label_error = plan.label_rule(spec, profile, max_invalid)
    if label_error:
        raise DataError(label_error)
    _, ent_acc = validate_table(engine, ent, max_invalid)
    label_values = {
        str(v): int(n)
        for v, n in engine.rows(f"SELECT {q(spec.label)}, count(*) FROM entities_kept GROUP BY 1")
    }
    if len(label_values) < 2:
        raise DataError(
            f"entities label '{spec.label}': only one class {list(label_values) or '[]'} in "
            f"{sum(label_values.values())} valid rows; training needs both "
            f"(positive is {list(spec.positive_labels)})"
        )
    accounting = {"entities": ent_acc}
    hist: TablePlan | None = None
    if spec.history:
        h = spec.history
        if history_files is None:
            raise DataError(
                f"feature spec field 'history': the spec has a history table keyed by '{h.key}', "
                "but there is no history input"
            )
        expected = [h.key, h.time] + [c.name for c in h.columns]
        hist = plan.history_plan(
            spec, engine.read_table("history", history_files, expected), share, engine.functions
        )
        _, accounting["history"] = validate_table(engine, hist, max_invalid)
    clock.append(time.perf_counter())
    as_of_text = None if as_of is None else as_of.isoformat()
    # Sorted once here where the engine's tables keep their order, else each output sorts its rows.
    sort_once = engine.functions.ordered_tables
    by_position = " ORDER BY _pos"
    features = plan.features_sql(spec, as_of_text)
    split: dict[str, Any]
    if spec.time_in_data:
        if cut_dates is None:
            times = engine.rows(plan.time_profile_sql(spec))
            n = sum(int(c) for _, c in times)
            v_at, t_at = plan.cut_positions(n, spec.validation_fraction, spec.test_fraction)
            v_cut, t_cut = _at(times, v_at), _at(times, t_at)
            split = {"method": "time", "source": "fractions"}
        else:
            v_cut, t_cut = pd.Timestamp(cut_dates[0]), pd.Timestamp(cut_dates[1])
            split = {"method": "time", "source": "dates"}
        split.update(validation_start=v_cut.date().isoformat(), test_start=t_cut.date().isoformat())
        which = plan.split_expr(spec, v_cut.isoformat(), t_cut.isoformat())
        engine.table(
            "features", f"SELECT *, {which} AS _split FROM ({features}) f{by_position if sort_once else ''}"
        )
    else:
        sizes = {int(c): int(n) for c, n in engine.rows(plan.class_sizes_sql(spec))}
        cuts = plan.random_cuts(sizes, spec.validation_fraction, spec.test_fraction)
        engine.table("entity_split", plan.random_split_sql(spec, engine.functions, cuts))
        engine.table(
            "features",
            f"SELECT f.*, s._split FROM ({features}) f JOIN entity_split s ON s._pos = f._pos"
            + (by_position if sort_once else ""),
        )
        split = {"method": "stratified_random", "seed": spec.split_seed}
    clock.append(time.perf_counter())
    outputs: list[tuple[str, Path]] = []  # (query, file): written together, side by side
    order = "" if sort_once else by_position
    summary = _write_splits(engine, spec, out, host, outputs, order)
    _write_quarantine(ent, hist if write_history_quarantine else None, out, host, outputs)
    records = _write_records(engine, spec, out, host, outputs, order)
    _write_all(engine, spec, outputs, order, baseline)
    clock.append(time.perf_counter())
    seconds = {
        "validate": round(clock[1] - clock[0], 3),
        "features": round(clock[2] - clock[1], 3),
        "split_and_write": round(clock[3] - clock[2], 3),
    }
    return Prepared(accounting, label_values, split, summary, records, seconds)


def _write_all(
    engine: Engine,
    spec: FeatureSpec,
    outputs: list[tuple[str, Path]],
    order: str,
    baseline: Callable[[dict[str, Any]], None] | None,
) -> None:
    """Writes the outputs (the training split first) and gives `baseline` the training rows' partial
    statistics: from the engine's table beside the writes where it can stream rows (no waiting for
    the file, no decoding it again: 0.3 s of CPU at 1M merchants), else from the written file.
    `order`: as for the splits; the rows come in the training file's order (the same sums)."""
    if baseline is None:
        engine.write_all(outputs)
        return
    made = baseline
    if isinstance(engine, StreamingEngine):
        columns = ", ".join(q(c) for c in data_baseline.columns(spec))
        rows = f"SELECT {columns} FROM features WHERE _split = 0{order}"
        streamed = engine

        def from_table() -> None:
            made(data_baseline.partial_from_arrow(streamed.arrow_batches(rows), spec))

        engine.write_all(outputs, beside=[from_table])
        return
    train = outputs[0][1]
    assert train.parent.name == "train", "the training split is the first output"
    # The Spark engine reads the split back itself (AWS's Spark image has no pyarrow).
    read_back = getattr(engine, "read_parquet", None)

    def on_written(path: Path) -> None:
        if path != train:
            return
        if read_back is not None:
            made(data_baseline.partial([read_back(path)], spec))
        else:
            made(data_baseline.partial_from_file(path, spec))

    engine.write_all(outputs, on_written)


def _at(times: list[tuple[Any, Any]], position: int) -> pd.Timestamp:
    """The time at a 0-based position of the sorted times, given (time, count) in time order."""
    seen = 0
    for when, count in times:
        seen += int(count)
        if position < seen:
            return pd.Timestamp(when)
    return pd.Timestamp(times[-1][0])


def _write_splits(
    engine: Engine, spec: FeatureSpec, out: Path, host: str, outputs: list[tuple[str, Path]], order: str
) -> dict[str, dict[str, Any]]:
    """`order`: the ORDER BY that puts `features` rows in input order (empty: it is in that order)."""
    columns = ", ".join(q(c) for c in plan.output_columns(spec))
    summary: dict[str, dict[str, Any]] = {}
    found = {int(r[0]): r[1:] for r in engine.rows(plan.split_summary_sql(spec))}
    for i, name in enumerate(SPLITS):
        outputs.append(
            (
                f"SELECT {columns} FROM features WHERE _split = {i}{order}",
                out / name / f"part-{host}.parquet",
            )
        )
        rows, first, last, positives = found.get(i, (0, None, None, 0))
        summary[name] = {
            "rows": int(rows),
            "first_time": pd.Timestamp(first).date().isoformat() if rows else None,
            "last_time": pd.Timestamp(last).date().isoformat() if rows else None,
            "positives": int(positives or 0),
            "label_rate": float(positives) / rows if rows else None,
        }
    return summary


def _write_quarantine(
    ent: TablePlan, hist: TablePlan | None, out: Path, host: str, outputs: list[tuple[str, Path]]
) -> None:
    """Rejected rows of both tables in one file: original text, source file and row, reason."""
    plans = [ent] + ([hist] if hist is not None else [])
    names = list(dict.fromkeys(r.name for p in plans for r in p.rules))
    parts = []
    for p in plans:
        have = {r.name for r in p.rules}
        cols = ", ".join(q(n) if n in have else f"CAST(NULL AS VARCHAR) AS {q(n)}" for n in names)
        for source in (f"{p.table}_bad", f"{p.table}_dups"):
            parts.append(
                f"SELECT _table, {cols}, _source_file, _row_number, _reason, _pos FROM {source} WHERE _mine"
            )
    union = " UNION ALL ".join(parts)
    outputs.append(
        (
            f"SELECT _table, {', '.join(q(n) for n in names)}, _source_file, _row_number, _reason "
            f"FROM ({union}) u ORDER BY _table, _pos",
            out / "quarantine" / f"part-{host}.parquet",
        )
    )


def _write_records(
    engine: Engine, spec: FeatureSpec, out: Path, host: str, outputs: list[tuple[str, Path]], order: str
) -> dict[str, int]:
    """Feature Store records per group: record id as text, event time as ISO-8601, the features."""
    ids, when = q(spec.entity_id), q(spec.entity_time)
    records = {}
    (n,) = engine.rows("SELECT count(*) FROM features")[0]
    for group in spec.feature_groups:
        cols = ", ".join(q(f) for f in group.features)
        outputs.append(
            (
                f"SELECT CAST({ids} AS VARCHAR) AS {ids}, strftime({when}, '%Y-%m-%dT%H:%M:%SZ') AS {when}, "
                f"{cols} FROM features{order}",
                out / "feature_store" / group.name / f"part-{host}.parquet",
            )
        )
        records[group.name] = int(n)
    return records
