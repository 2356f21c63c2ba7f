"""Checks over the plan's query results, in Python (the same for every engine).

Schema checks stop the job: a column that mostly fails (more than the spec's
max_invalid_fraction) is the wrong type or a spec that does not match the data; the rest are
row-level problems that quarantine the row.  The row accounting must add up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline_steps.common.contract import DataError
from pipeline_steps.preprocess.sql.plan import TablePlan

EXAMPLES = 3


def schema_checks(
    plan: TablePlan,
    stats: dict[str, Any],
    max_invalid: float,
    examples: Callable[[str], list[str]],
    nulls: Callable[[str], int],
) -> None:
    """`stats`: the plan's stats; `examples(code)`: the first texts of a problem; `nulls(column)`:
    a nullable column's missing values (a scan of the column, asked for only when it has bad values)."""
    table, rows = plan.table, int(stats["rows"])
    for rule in plan.rules:
        if rule.role == "label":
            continue
        col, name = rule.column, rule.name
        bad = int(stats.get(f"unparseable:{name}") or 0) + int(stats.get(f"unknown_category:{name}") or 0)
        if not bad:
            present = rows  # no share of bad values to compute
        elif f"null:{name}" in stats:
            present = rows - int(stats[f"null:{name}"] or 0)
        else:
            present = rows - nulls(name)

        def fraction(code: str, of: int) -> float:
            return int(stats.get(code) or 0) / of if of else 0.0

        frac = fraction(f"unparseable:{name}", present)
        if frac > max_invalid:
            raise DataError(
                f"{table} column '{name}': {frac:.0%} of values do not parse as {col.type} "
                f"(more than max_invalid_fraction {max_invalid}), e.g. {examples(f'unparseable:{name}')}: "
                "wrong type"
            )
        frac = fraction(f"unknown_category:{name}", present)
        if frac > max_invalid:
            raise DataError(
                f"{table} column '{name}': {frac:.0%} of values are not among the spec's categories "
                f"{list(col.categories)}, e.g. {examples(f'unknown_category:{name}')}: "
                "the spec does not match the data"
            )
        if col.nullable:
            continue  # missing values are allowed (and not counted unless needed above)
        frac = int(stats[f"null:{name}"] or 0) / rows if rows else 0.0
        if frac > max_invalid:
            raise DataError(
                f"{table} column '{name}': {frac:.0%} of values are missing but the spec says it is "
                "not nullable: the spec does not match the data"
            )


def first_unique(values: list[Any], limit: int = EXAMPLES) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v is not None))[:limit]


def accounting(
    table: str, rows_in: int, rows_out: int, by_reason: dict[str, int], duplicates: dict[str, int]
) -> dict[str, Any]:
    """The report's accounting for one table; a broken invariant is an internal error."""
    quarantined = sum(by_reason.values())
    if rows_in != rows_out + quarantined:
        raise RuntimeError(
            f"{table}: row accounting broke: {rows_in} in, {rows_out} out, {quarantined} quarantined, "
            f"reasons {by_reason}"
        )
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_quarantined": quarantined,
        "quarantined_by_reason": dict(sorted(by_reason.items())),
        "duplicates": duplicates,
        "invariant_holds": True,
    }


def check_input_files(
    table: str, paths: Sequence[Path], expected: Sequence[str], columns_of: Callable[[Path], Sequence[str]]
) -> None:
    """Every input file of `table` has exactly the spec's columns (`columns_of` reads a file's
    header, the engine's way); else a DataError naming the file and the columns."""
    if not paths:
        raise DataError(f"{table}: input is empty: no CSV or Parquet files found")
    for path in paths:
        columns = columns_of(path)
        missing = [c for c in expected if c not in columns]
        extra = [c for c in columns if c not in expected]
        if missing:
            raise DataError(f"{table} file {path.name}: missing column(s) {missing} that the spec requires")
        if extra:
            raise DataError(f"{table} file {path.name}: extra column(s) {extra} that the spec does not name")
