"""The heavy core of preparation written the Polars way, for the engine benchmark only.

What it does, the rules of `pipeline_steps/preprocess/sql/plan.py` for the spec's history table:
every history row's checks (null tokens, parsing, ranges; every problem in the reason, the first
one as the code), de-duplication of the rows that passed (key = history key + time; the first
occurrence in file order, then row order, is kept; later ones are exact duplicates when every
column is equal, else repeated keys), point-in-time aggregates over whole months before each
kept entity's month, and the join back to the kept entities with the derived ratios.

How: lazy frames over every input file (`scan_parquet`, one per file for the row numbers that
reasons cite), run by the streaming engine in passes over the files: (1) flag counts and the
rejected rows, (1b) the repeated keys (a group-by over every valid row's key), (2) every row of
a repeated key, (3) the kept rows' aggregates joined to the entities, streamed into a Parquet
sink.  Results that are small (rejected rows, repeated keys and their rows) are collected;
joins against them are told to build their hash table on the small side.  The rules
come from the plan's own `history_rules` and the checks from `sql/checks.py`; only the
expressions are Polars'.  The entity side (label profile, entity checks, the split) is not here:
both engines start from the same kept entities (see `bench/polars_vs_duckdb.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.preprocess.sql import checks, plan
from pipeline_steps.preprocess.sql.plan import NULL_TEXT, POSITION, Rule

ENGINE = "streaming"


def _kind(dtype: pl.DataType) -> str:
    """A Polars type as the plan's raw kinds (text, integer, float, boolean, date)."""
    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype in (pl.Date, pl.Datetime):
        return "date"
    return "text"


def scan(table: str, paths: list[Path], expected: list[str]) -> tuple[pl.LazyFrame, dict[str, str]]:
    """Every file of a table as one lazy frame with `_file`, `_row` (1-based) and `_source_file`,
    and each column's kind; a column stored differently in different files is read as text."""
    checks.check_input_files(table, paths, expected, lambda p: list(pl.read_parquet_schema(p)))
    schemas = [pl.read_parquet_schema(p) for p in paths]
    per_file = [{c: _kind(s[c]) for c in expected} for s in schemas]
    mixed = {c for c in expected if len({k[c] for k in per_file}) > 1}
    kinds = {c: "text" if c in mixed else per_file[0][c] for c in expected}
    frames = [
        pl.scan_parquet(p, row_index_name="_row", row_index_offset=1).select(
            *[pl.col(c).cast(pl.String) if c in mixed else pl.col(c) for c in expected],
            pl.lit(i, pl.Int64).alias("_file"),
            pl.col("_row").cast(pl.Int64),
            pl.lit(p.name).alias("_source_file"),
        )
        for i, p in enumerate(paths)
    ]
    return pl.concat(frames, how="vertical"), kinds


def _raw(name: str) -> pl.Expr:
    return pl.col(f"{name}__raw")


@dataclass
class Checks:
    """The plan's checks of one table (`TablePlan`) as Polars expressions over `<column>__raw`."""

    rules: list[Rule]
    kinds: dict[str, str]

    def text(self, name: str, suffix: str = "__raw") -> pl.Expr:
        """The original value as text, as the SQL casts it."""
        c, kind = pl.col(name + suffix), self.kinds[name]
        if kind == "text":
            return c
        if kind == "date":
            return c.dt.strftime("%Y-%m-%d")
        return c.cast(pl.String)

    def null(self, name: str) -> pl.Expr:
        c, kind = _raw(name), self.kinds[name]
        if kind == "text":
            return c.is_null() | c.str.strip_chars(" ").str.to_lowercase().is_in(NULL_TEXT)
        if kind == "float":
            return c.is_null() | c.is_nan()
        return c.is_null()

    def parsed(self, rule: Rule) -> pl.Expr:
        """The value parsed to the spec type (null where it does not parse)."""
        col, c, kind = rule.column, _raw(rule.name), self.kinds[rule.name]
        if rule.role == "label":
            raise NotImplementedError("the benchmark covers the history table (no label)")
        if col.type in ("number", "integer", "boolean"):
            if kind in ("integer", "float"):
                return c.cast(pl.Float64)
            if kind == "boolean":
                return pl.when(c).then(1.0).otherwise(0.0)
            if kind == "date":
                return pl.lit(None, pl.Float64)
            if col.type == "boolean":
                low = c.str.strip_chars(" ").str.to_lowercase()
                true, false = low.is_in(plan.TRUE_TEXT), low.is_in(plan.FALSE_TEXT)
                return pl.when(true).then(1.0).when(false).then(0.0)
            return c.str.strip_chars(" ").cast(pl.Float64, strict=False)
        if col.type == "date":
            if kind == "date":
                return c.cast(pl.Datetime("us"))
            if kind != "text":
                return pl.lit(None, pl.Datetime("us"))
            return c.str.strip_chars(" ").str.to_datetime(strict=False, time_unit="us")
        return self.text(rule.name)  # category, string: the text as it is

    def problems(self, rule: Rule) -> list[tuple[pl.Expr, str, pl.Expr]]:
        """[(condition, reason code, reason text)] in the plan's order (`TablePlan._problems`)."""
        col, name, role = rule.column, rule.name, rule.role
        n, v, t = pl.col(f"{name}__null"), pl.col(f"{name}__v"), self.text(name)
        quoted = pl.concat_str(pl.lit(f"{name}: '"), t, pl.lit("'"))
        out = []
        if role in ("id", "time", "label", "key") or not col.nullable:
            what = role if role != "column" else "not nullable"
            code = f"missing_{role if role != 'column' else 'required'}:{name}"
            out.append((n, code, pl.lit(f"{name}: missing ({what})")))
        kind = self.kinds[name]
        if col.type in ("number", "integer"):
            finite = (v - v) == 0
            whole = v == v.round()
            bad: pl.Expr | None
            if kind == "integer":  # a stored integer always parses
                bad = None
            elif kind == "float":  # NaN is a null; infinities and (for integers) fractions are not numbers
                bad = (~finite | ~whole) if col.type == "integer" else ~finite
            else:
                bad = v.is_null() | ~finite | (~whole if col.type == "integer" else pl.lit(False))
            if bad is not None:
                message = pl.concat_str(quoted, pl.lit(f" is not a valid {col.type}"))
                out.append((~n & bad, f"unparseable:{name}", message))
            parsed = ~n if bad is None else ~n & ~bad
            ranges = ([v < col.min] if col.min is not None else []) + (
                [v > col.max] if col.max is not None else []
            )
            if ranges:
                lo = col.min if col.min is not None else "-inf"
                hi = col.max if col.max is not None else "inf"
                message = pl.concat_str(pl.lit(f"{name}: "), t, pl.lit(f" is outside [{lo}, {hi}]"))
                out.append((parsed & pl.any_horizontal(ranges), f"out_of_range:{name}", message))
        elif col.type in ("boolean", "date") and kind != col.type:  # a stored boolean/date always parses
            message = pl.concat_str(quoted, pl.lit(f" is not a valid {col.type}"))
            out.append((~n & v.is_null(), f"unparseable:{name}", message))
        elif col.type == "category":
            message = pl.concat_str(quoted, pl.lit(f" is not one of the categories {list(col.categories)}"))
            out.append((~n & ~v.is_in(list(col.categories)), f"unknown_category:{name}", message))
        # SQL's CASE WHEN takes an unknown (null) condition as false.
        return [(cond.fill_null(False), code, message) for cond, code, message in out]

    @property
    def codes(self) -> list[str]:
        return [code for r in self.rules for _, code, _ in self.problems(r)]

    def checked(self, raw: pl.LazyFrame) -> pl.LazyFrame:
        """Raw columns (for the rejected rows' text), one flag per null and per problem, clean
        values (null where missing or invalid), `_ok`, `_pos` (file order, then row order)."""
        names = [r.name for r in self.rules]
        layer1 = [self.null(n).alias(f"{n}__null") for n in names]
        layer1 += [self.parsed(r).alias(f"{r.name}__v") for r in self.rules]
        flags = [pl.col(f"{n}__null").alias(f"null:{n}") for n in names]
        flags += [cond.alias(code) for r in self.rules for cond, code, _ in self.problems(r)]
        cast = {"number": pl.Float64, "integer": pl.Int64, "boolean": pl.Int8, "date": pl.Datetime("us")}
        values = []
        for r in self.rules:
            own = [f"null:{r.name}"] + [code for _, code, _ in self.problems(r)]
            value, dtype = pl.col(f"{r.name}__v"), cast.get(r.column.type)
            clean = value.cast(dtype) if dtype is not None else value
            values.append(pl.when(~pl.any_horizontal(own)).then(clean).alias(r.name))
        codes = self.codes
        return (
            raw.rename({n: f"{n}__raw" for n in names})
            .with_columns(layer1)
            .with_columns(flags)
            .select(
                *[f"{n}__raw" for n in names],
                *[f"null:{n}" for n in names],
                *codes,
                *values,
                (~pl.any_horizontal(codes) if codes else pl.lit(True)).alias("_ok"),
                (pl.col("_file") * POSITION + pl.col("_row")).alias("_pos"),
                "_row",
                "_source_file",
            )
        )

    def stats(self, checked: pl.LazyFrame) -> pl.LazyFrame:
        """One row: rows, and rows per flag (the counts `checks.schema_checks` reads)."""
        flags = [f"null:{r.name}" for r in self.rules] + self.codes
        return checked.select(pl.len().alias("rows"), *[pl.col(f).sum() for f in flags])

    def texts(self, suffix: str = "__raw") -> list[pl.Expr]:
        return [self.text(r.name, suffix).alias(r.name) for r in self.rules]

    def rejected(self, checked: pl.LazyFrame, table: str) -> pl.LazyFrame:
        """Rows with a row-level problem: original text, source, the first reason's code, all reasons."""
        problems = [p for r in self.rules for p in self.problems(r)]
        first = pl.coalesce([pl.when(pl.col(code)).then(pl.lit(code)) for _, code, _ in problems])
        messages = [pl.when(pl.col(code)).then(message) for _, code, message in problems]
        return checked.filter(~pl.col("_ok")).select(
            pl.lit(table).alias("_table"),
            *self.texts(),
            "_source_file",
            pl.col("_row").alias("_row_number"),
            first.alias("_code"),
            pl.concat_str(messages, separator="; ", ignore_nulls=True).alias("_reason"),
            "_pos",
        )

    def duplicates(self, involved: pl.DataFrame, key: list[str], table: str) -> pl.DataFrame:
        """Every row of a repeated key (with `_first`) -> the later occurrences as quarantine rows."""
        raws = [f"{r.name}__raw" for r in self.rules]
        firsts = involved.filter(pl.col("_pos") == pl.col("_first")).select(
            pl.col("_pos").alias("_first"),
            *[pl.col(c).alias(c + "_o") for c in raws],
            pl.col("_row").alias("_row_o"),
            pl.col("_source_file").alias("_source_file_o"),
        )
        later = involved.filter(pl.col("_pos") != pl.col("_first")).join(firsts, on="_first")
        exact = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c + "_o")) for c in raws])
        where = pl.concat_str(
            pl.lit("row "), pl.col("_row_o").cast(pl.String), pl.lit(" of "), "_source_file_o"
        )
        joined = "+".join(key)
        key_text = pl.concat_str([self.text(k).fill_null("") for k in key], separator=" ")
        return later.select(
            pl.lit(table).alias("_table"),
            *self.texts(),
            "_source_file",
            pl.col("_row").alias("_row_number"),
            pl.when(exact)
            .then(pl.lit("exact_duplicate"))
            .otherwise(pl.lit(f"duplicate_key:{joined}"))
            .alias("_code"),
            pl.when(exact)
            .then(pl.concat_str(pl.lit("exact duplicate of "), where))
            .otherwise(
                pl.concat_str(
                    pl.lit(f"duplicate {joined} '"), key_text, pl.lit("' (first at "), where, pl.lit(")")
                )
            )
            .alias("_reason"),
            "_pos",
        )


def _month(when: pl.Expr) -> pl.Expr:
    return when.dt.year().cast(pl.Int64) * 12 + when.dt.month().cast(pl.Int64)


def features(spec: FeatureSpec, entities_kept: pl.LazyFrame, history_kept: pl.LazyFrame) -> pl.LazyFrame:
    """`plan.features_sql` in Polars: kept entities + point-in-time aggregates + derived ratios."""
    h = spec.history
    assert h is not None and spec.entity_key is not None and spec.time_in_data
    longest = max(a.months for a in h.aggregates)
    e = entities_kept.filter(pl.col("_mine")).select(
        "_pos", pl.col(spec.entity_key).alias("_k"), _month(pl.col(spec.entity_time)).alias("_em")
    )
    hist = history_kept.select(
        pl.col(h.key).alias("_k"),
        _month(pl.col(h.time)).alias("_hm"),
        *dict.fromkeys(a.column for a in h.aggregates),
    )
    pairs = (
        e.join(hist, on="_k", how="inner", build_side="force_left")
        .with_columns((pl.col("_em") - pl.col("_hm")).alias("_d"))
        .filter(pl.col("_d").is_between(1, longest))
    )
    aggs, post = [], []
    for a in h.aggregates:
        inside = pl.when(pl.col("_d") <= a.months).then(pl.col(a.column))
        if a.fn == "count":
            aggs.append(inside.count().cast(pl.Int64).alias(a.name))
            post.append(pl.col(a.name).fill_null(0))
        elif a.fn == "sum":  # SQL's sum of no values is null, Polars' is 0
            aggs += [inside.sum().alias(a.name), inside.count().alias(f"{a.name}__n")]
            post.append(
                pl.when(pl.col(f"{a.name}__n") > 0).then(pl.col(a.name)).cast(pl.Float64).alias(a.name)
            )
        else:
            fn = {"mean": inside.mean(), "max": inside.max(), "min": inside.min(), "std": inside.std()}[a.fn]
            aggs.append(fn.alias(a.name))
            post.append(pl.col(a.name).cast(pl.Float64))
    per_entity = pairs.group_by("_pos").agg(aggs)
    base = [
        spec.entity_id,
        spec.entity_time,
        spec.label,
        *[c.name for c in spec.columns],
        "_positive",
        "_pos",
    ]
    out = (
        entities_kept.filter(pl.col("_mine"))
        .select(base)
        .join(per_entity, on="_pos", how="left", build_side="force_right")
        .with_columns(post)
        .select(*base, *[a.name for a in h.aggregates])
    )
    ratios = []
    for d in spec.derived:
        den = pl.col(d.denominator).cast(pl.Float64)
        ratios.append((pl.col(d.numerator).cast(pl.Float64) / pl.when(den != 0).then(den)).alias(d.name))
    return out.with_columns(ratios)


def run(spec: FeatureSpec, history_files: list[Path], entities_kept: Path, out: Path) -> dict[str, Any]:
    """Validates, de-duplicates and aggregates the history; writes features.parquet,
    quarantine.parquet and accounting.json to `out`; returns the accounting."""
    h = spec.history
    assert h is not None
    expected = [h.key, h.time] + [c.name for c in h.columns]
    raw, kinds = scan("history", history_files, expected)
    table_plan = plan.history_plan(spec, kinds, plan.Share(), plan.Functions())
    rules = Checks(table_plan.rules, kinds)
    checked = rules.checked(raw)
    ok = checked.filter(pl.col("_ok"))
    key = table_plan.key
    # Keys are compared as dates where the key is a date (the plan casts them).
    types = {r.name: r.column.type for r in table_plan.rules}
    key_values = [pl.col(k).cast(pl.Date) if types[k] == "date" else pl.col(k) for k in key]
    keyed = ok.with_columns(key_values)
    repeated = (
        keyed.group_by(key)
        .agg(pl.col("_pos").min().alias("_first"), pl.len().alias("_n"))
        .filter(pl.col("_n") > 1)
        .drop("_n")
    )
    # Pass 1: counts per flag and the rejected rows (small).  The repeated keys get a pass of their
    # own: run beside the group-by (one hash table entry per key), the other branches of one
    # collect_all were held back in memory (5.3 GiB at 1M merchants instead of 2.8).
    stats_df, rejected = pl.collect_all(
        [rules.stats(checked), rules.rejected(checked, "history")], engine=ENGINE
    )
    stats = {k: int(v or 0) for k, v in stats_df.row(0, named=True).items()}
    stats["mine"] = stats["rows"]
    if stats["rows"] == 0:
        raise ValueError("history: input is empty: 0 rows")
    checks.schema_checks(
        table_plan, stats, spec.max_invalid_fraction, lambda code: [], lambda name: stats[f"null:{name}"]
    )
    firsts = repeated.collect(engine=ENGINE)
    # Pass 2: every row of a repeated key (a few), collected: the later occurrences are known before
    # the features pass starts (an anti-join fed from the same scan would hold the whole scan back).
    involved = keyed.join(firsts.lazy(), on=key, how="inner", build_side="force_right").collect(engine=ENGINE)
    later = involved.filter(pl.col("_pos") != pl.col("_first")).select("_pos")
    # Pass 3: the kept rows' point-in-time features, streamed into a Parquet sink.
    kept = keyed.join(later.lazy(), on="_pos", how="anti", build_side="force_right")
    out.mkdir(parents=True, exist_ok=True)
    entities = pl.scan_parquet(entities_kept)
    features(spec, entities, kept).sort("_pos").sink_parquet(out / "features.parquet", engine=ENGINE)
    dups = rules.duplicates(involved, key, "history")
    quarantine = pl.concat([rejected, dups], how="vertical").sort("_pos")
    quarantine.write_parquet(out / "quarantine.parquet")
    by_reason = {code: int(n) for code, n in quarantine.group_by("_code").len().iter_rows()}
    duplicates = {
        "exact": by_reason.get("exact_duplicate", 0),
        "key": sum(n for c, n in by_reason.items() if c.startswith("duplicate_key:")),
    }
    rows_out = stats["rows"] - sum(by_reason.values())
    acc = checks.accounting("history", stats["rows"], rows_out, by_reason, duplicates)
    (out / "accounting.json").write_text(json.dumps(acc, indent=1, sort_keys=True) + "\n")
    return acc
