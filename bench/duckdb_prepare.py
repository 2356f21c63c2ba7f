"""The preparation engine candidate: the preprocess step's work as SQL generated from the spec,
run by DuckDB (streaming, out of core, all cores).  Measured against the pandas implementation
by `bench/prepare_engines.py`; not wired into the pipeline (see BENCHMARKS.md).

Same rules as `pipeline_steps/preprocess`: null tokens, number/integer/boolean/date/category
parsing, ranges, the first reason of each rejected row, de-duplication keeping the first
occurrence (file order, then row order), point-in-time aggregates over whole months before
the entity's month, ratios with a zero denominator as null, and time-split cut dates taken
over ALL rows (so one or many workers agree).  Not done here: the Model Monitor baseline
files and the quarantine's full-text reasons (the reason code is written).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import duckdb

from pipeline_steps.common.feature_spec import Column, FeatureSpec, load_spec

NULL_TEXT = ("", "na", "n/a", "nan", "null", "none", "<na>")
TRUE = ("1", "true", "t", "yes", "y")
FALSE = ("0", "false", "f", "no", "n")
AGG_SQL = {"mean": "avg", "sum": "sum", "max": "max", "min": "min", "count": "count", "std": "stddev_samp"}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(values: Any) -> str:
    return "(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"


NUMERIC = (
    *("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE"),
    *("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"),
)


def _parsed(col: Column, raw_type: str) -> tuple[str, str]:
    """(null, parsed value) over the raw column: typed Parquet columns skip the text round trip."""
    raw = q(col.name)
    typed = raw_type in NUMERIC or raw_type.startswith("DECIMAL")
    text = f"CAST({raw} AS VARCHAR)"
    if typed or raw_type in ("BOOLEAN", "DATE") or raw_type.startswith("TIMESTAMP"):
        null = f"({raw} IS NULL OR isnan({raw}))" if raw_type in ("FLOAT", "DOUBLE") else f"({raw} IS NULL)"
    else:
        null = f"({raw} IS NULL OR lower(trim({text})) IN {lit(NULL_TEXT)})"
    if col.type in ("number", "integer"):
        if typed or raw_type == "BOOLEAN":
            return null, f"CAST({raw} AS DOUBLE)"
        return null, f"TRY_CAST(trim({text}) AS DOUBLE)"
    if col.type == "boolean":
        low = f"lower(trim({text}))"
        return (
            null,
            f"CAST(CASE WHEN {low} IN {lit(TRUE)} THEN 1 WHEN {low} IN {lit(FALSE)} THEN 0 END AS TINYINT)",
        )
    if col.type == "date":
        if raw_type == "DATE" or raw_type.startswith("TIMESTAMP"):
            return null, f"CAST({raw} AS TIMESTAMP)"
        return null, f"TRY_CAST(trim({text}) AS TIMESTAMP)"
    return null, text  # category, string, label: the text as it is


def _checks(col: Column, role: str) -> tuple[str, list[tuple[str, str]]]:
    """(the kept value, [(condition, reason code)] in the preprocess step's order) over layer 1."""
    name, n, v = col.name, q(f"{col.name}__null"), q(f"{col.name}__p")
    reasons = []
    if role in ("id", "time", "label", "key") or not col.nullable:
        reasons.append((n, f"missing_{role if role != 'column' else 'required'}:{name}"))
    value = v
    if col.type in ("number", "integer"):
        bad = f"({v} IS NULL OR isinf({v}) OR isnan({v})" + (
            f" OR {v} <> round({v}))" if col.type == "integer" else ")"
        )
        reasons.append((f"(NOT {n} AND {bad})", f"unparseable:{name}"))
        ranges = ([f"{v} < {col.min}"] if col.min is not None else []) + (
            [f"{v} > {col.max}"] if col.max is not None else []
        )
        if ranges:
            reasons.append((f"(NOT {n} AND NOT {bad} AND ({' OR '.join(ranges)}))", f"out_of_range:{name}"))
        value = f"CAST({v} AS {'DOUBLE' if col.type == 'number' else 'BIGINT'})"
    elif col.type in ("boolean", "date"):
        reasons.append((f"(NOT {n} AND {v} IS NULL)", f"unparseable:{name}"))
    elif col.type == "category" and role != "label":
        reasons.append((f"(NOT {n} AND {v} NOT IN {lit(col.categories)})", f"unknown_category:{name}"))
    return f"CASE WHEN NOT {n} THEN {value} END", reasons


def _validated_view(
    con: Any, table: str, folder: Path, columns: list[tuple[Column, str]], key: list[str]
) -> None:
    """Creates <table>_checked (typed values, first reason, position) and <table>_final (+ duplicates)."""
    files = sorted(str(f) for f in Path(folder).glob("*.parquet"))
    raw = " UNION ALL BY NAME ".join(
        f"SELECT *, {i} AS _file, file_row_number + 1 AS _row "
        f"FROM read_parquet('{f}', file_row_number = true)"
        for i, f in enumerate(files)
    )
    types = dict(
        con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{files[0]}'))"
        ).fetchall()
    )
    layer1 = []
    for col, _ in columns:
        null, parsed = _parsed(col, types.get(col.name, "VARCHAR"))
        layer1 += [f"{null} AS {q(col.name + '__null')}", f"{parsed} AS {q(col.name + '__p')}"]
    values, reasons = [], []
    for col, role in columns:
        value, checks = _checks(col, role)
        values.append(f"{value} AS {q(col.name)}")
        reasons += checks
    reason = "CASE " + " ".join(f"WHEN {cond} THEN '{code}'" for cond, code in reasons) + " END"
    # Exact duplicates: the same typed values (hashed only for rows whose key repeats).
    row_hash = "hash(" + ", ".join("{a}" + q(c.name) for c, _ in columns) + ")"
    keys = ", ".join(q(k) for k in key)
    key_hash = (
        "hash(" + ", ".join(f"CASE WHEN NOT {q(k + '__null')} THEN {q(k + '__p')} END" for k in key) + ")"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {table}_checked AS SELECT {', '.join(values)}, {reason} AS _reason, "
        f"_key_hash, _file * 4294967296 + _row AS _pos, _file, _row FROM "
        f"(SELECT {', '.join(layer1)}, {key_hash} AS _key_hash, _file, _row FROM ({raw}))"
    )
    # Duplicates among the rows that passed: the first occurrence (file, then row) is kept.
    # Grouping by one integer (the key's hash) finds the few candidates; the real keys decide.
    con.execute(
        f"CREATE OR REPLACE TABLE {table}_dups AS SELECT {keys}, min(_pos) AS _first, "
        f"arg_min({row_hash.format(a='')}, _pos) AS _first_hash FROM {table}_checked "
        f"WHERE _reason IS NULL AND _key_hash IN "
        f"(SELECT _key_hash FROM {table}_checked WHERE _reason IS NULL GROUP BY ALL HAVING count(*) > 1) "
        f"GROUP BY ALL HAVING count(*) > 1"
    )
    on = " AND ".join(f"c.{q(k)} = d.{q(k)}" for k in key)
    con.execute(
        f"CREATE OR REPLACE VIEW {table}_final AS SELECT c.* EXCLUDE (_reason, _key_hash), CASE "
        f"WHEN c._reason IS NOT NULL THEN c._reason "
        f"WHEN d._first IS NOT NULL AND c._pos <> d._first AND {row_hash.format(a='c.')} = d._first_hash "
        f"THEN 'exact_duplicate' "
        f"WHEN d._first IS NOT NULL AND c._pos <> d._first "
        f"THEN 'duplicate_key:{'+'.join(key)}' END AS _reason "
        f"FROM {table}_checked c LEFT JOIN {table}_dups d ON c._reason IS NULL AND {on}"
    )


def prepare(spec_path: Path, entities: Path, history: Path | None, output: Path, threads: int = 2) -> dict:
    spec: FeatureSpec = load_spec(spec_path)
    started = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": threads, "preserve_insertion_order": False})
    con.execute(f"SET temp_directory = '{output / '.tmp'}'")
    ent_cols = [(Column(spec.entity_id, "string"), "id"), (Column(spec.entity_time, "date"), "time")]
    ent_cols += [(Column(spec.label, "string"), "label")]
    ent_cols += [(c, "key" if c.name == spec.entity_key else "column") for c in spec.columns]
    _validated_view(con, "ent", entities, ent_cols, [spec.entity_id])
    counts: dict[str, Any] = {}
    ids, when, label = q(spec.entity_id), q(spec.entity_time), q(spec.label)
    features = [f"e.{q(c.name)}" for c in spec.columns]
    if spec.history and history is not None:
        h = spec.history
        hist_cols = [(Column(h.key, "string"), "key"), (Column(h.time, "date"), "time")]
        hist_cols += [(c, "column") for c in h.columns]
        _validated_view(con, "hist", history, hist_cols, [h.key, h.time])
        longest = max(a.months for a in h.aggregates)
        month = "(year({t}) * 12 + month({t}) - 1)"
        aggs = []
        for a in h.aggregates:
            offset = f"(e._m - h._m BETWEEN 1 AND {a.months})"
            aggs.append(f"{AGG_SQL[a.fn]}(h.{q(a.column)}) FILTER (WHERE {offset}) AS {q(a.name)}")
        con.execute(
            f"CREATE OR REPLACE TABLE agg AS SELECT e.{ids}, {', '.join(aggs)} "
            f"FROM (SELECT {ids}, {q(spec.entity_key or h.key)} AS _k, {month.format(t=when)} AS _m "
            f"FROM ent_final "
            f"WHERE _reason IS NULL) e "
            f"LEFT JOIN (SELECT *, {q(h.key)} AS _k, {month.format(t=q(h.time))} AS _m FROM hist_final "
            f"WHERE _reason IS NULL) h ON e._k = h._k AND h._m BETWEEN e._m - {longest} AND e._m - 1 "
            f"GROUP BY e.{ids}"
        )
        features += [f"a.{q(a.name)}" for a in h.aggregates]
        joined = "ent_final e LEFT JOIN agg a USING (" + ids + ")"
        counts["history"] = _accounting(con, "hist")
    else:
        joined = "ent_final e"
    derived = []
    for d in spec.derived:
        derived.append(
            f"CAST({q(d.numerator)} AS DOUBLE) / NULLIF(CAST({q(d.denominator)} AS DOUBLE), 0) AS {q(d.name)}"
        )
    base = f"SELECT e.{ids}, e.{when}, e.{label}, {', '.join(features)} FROM {joined} WHERE e._reason IS NULL"
    extra = "".join(f", {d}" for d in derived)
    con.execute(f"CREATE OR REPLACE TABLE feats AS SELECT *{extra} FROM ({base})")
    counts["entities"] = _accounting(con, "ent")
    # Global cut dates: over every kept row, whichever worker holds it.
    n = _scalar(con, "SELECT count(*) FROM feats")
    v_at = min(int(n * (1 - spec.validation_fraction - spec.test_fraction)), n - 1)
    t_at = min(int(n * (1 - spec.test_fraction)), n - 1)
    v_cut = _scalar(con, f"SELECT {when} FROM feats ORDER BY {when} LIMIT 1 OFFSET {v_at}")
    t_cut = _scalar(con, f"SELECT {when} FROM feats ORDER BY {when} LIMIT 1 OFFSET {t_at}")
    columns = ", ".join(q(c) for c in [spec.entity_id, spec.entity_time, spec.label, *spec.feature_names])
    splits = {
        "train": f"{when} < TIMESTAMP '{v_cut}'",
        "validation": f"{when} >= TIMESTAMP '{v_cut}' AND {when} < TIMESTAMP '{t_cut}'",
        "test": f"{when} >= TIMESTAMP '{t_cut}'",
    }
    sizes = {}
    for name, where in splits.items():
        (output / name).mkdir(exist_ok=True)
        target = output / name / "part-0.parquet"
        con.execute(f"COPY (SELECT {columns} FROM feats WHERE {where}) TO '{target}' (FORMAT parquet)")
        sizes[name] = _scalar(con, f"SELECT count(*) FROM feats WHERE {where}")
    (output / "quarantine").mkdir(exist_ok=True)
    quarantine = " UNION ALL ".join(
        f"SELECT '{t}' AS _table, _file AS _source_file, _row AS _row_number, _reason "
        f"FROM {t}_final WHERE _reason IS NOT NULL"
        for t in (["ent", "hist"] if "history" in counts else ["ent"])
    )
    con.execute(f"COPY ({quarantine}) TO '{output / 'quarantine' / 'part-0.parquet'}' (FORMAT parquet)")
    for group in spec.feature_groups:
        folder = output / "feature_store" / group.name
        folder.mkdir(parents=True, exist_ok=True)
        cols = ", ".join(q(f) for f in group.features)
        con.execute(
            f"COPY (SELECT CAST({ids} AS VARCHAR) AS {ids}, "
            f"strftime({when}, '%Y-%m-%dT%H:%M:%SZ') AS {when}, {cols} FROM feats) "
            f"TO '{folder / 'part-0.parquet'}' (FORMAT parquet)"
        )
    report = {
        **counts,
        "split": {"validation_start": str(v_cut), "test_start": str(t_cut), **sizes},
        "seconds": round(time.perf_counter() - started, 3),
    }
    (output / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return report


def _scalar(con: Any, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    if row is None:
        raise RuntimeError(f"no row from: {sql[:80]}")
    return row[0]


def _accounting(con: Any, table: str) -> dict[str, Any]:
    rows = con.execute(f"SELECT _reason, count(*) FROM {table}_final GROUP BY ALL").fetchall()
    by_reason = {r: c for r, c in rows if r is not None}
    kept = sum(c for r, c in rows if r is None)
    total = sum(c for _, c in rows)
    return {"rows_in": total, "rows_out": kept, "rows_quarantined": total - kept, "by_reason": by_reason}
