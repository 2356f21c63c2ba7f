"""The plan's SQL (DuckDB's dialect, kept portable) as Spark SQL, through sqlglot.

The plan is written once (`plan.py`); this module is the only place that knows how Spark
differs.  sqlglot does almost all of it (quoting, TRY_CAST, TIMESTAMP -> TIMESTAMP_NTZ,
strftime -> date_format, NULLS LAST where DuckDB sorts nulls last ...); the differences it
leaves are fixed here:

- strftime formats with literal letters (`'%Y-%m-%dT%H:%M:%SZ'`): Java's date_format needs the
  literal text quoted (`yyyy-MM-dd'T'HH:mm:ss'Z'`), or `T` is an error and `Z` a zone offset.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark

# strftime directive -> Java DateTimeFormatter pattern (the directives the plan uses, and a few more).
_DIRECTIVES = {
    "%Y": "yyyy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%M": "mm",
    "%S": "ss",
    "%f": "SSSSSS",
    "%j": "DDD",
    "%%": "%",
}
_TOKEN = re.compile(r"%[A-Za-z%]|[A-Za-z]+|[^%A-Za-z]+")


def java_time_format(strftime_format: str) -> str:
    """A strftime format as a Java pattern, literal letters quoted."""
    out = []
    for token in _TOKEN.findall(strftime_format):
        if token.startswith("%"):
            if token not in _DIRECTIVES:
                raise ValueError(f"strftime directive {token!r} has no Spark equivalent here")
            out.append(_DIRECTIVES[token])
        elif token.isalpha():
            out.append("'" + token + "'")
        else:
            out.append(token.replace("'", "''"))
    return "".join(out)


_SparkGenerator: Any = Spark.Generator  # sqlglot builds the class at run time: no static type


class PlanSpark(Spark):
    """Spark SQL with the fixes above."""

    class Generator(_SparkGenerator):
        def timetostr_sql(self, expression: exp.TimeToStr) -> str:
            fmt = expression.args.get("format")
            if isinstance(fmt, exp.Literal) and fmt.is_string:
                # sqlglot keeps the format in strftime notation (DuckDB's own) until it writes it.
                pattern = java_time_format(fmt.this)
                return self.func("DATE_FORMAT", expression.this, exp.Literal.string(pattern))
            return super().timetostr_sql(expression)


@lru_cache(maxsize=512)
def to_spark(sql: str) -> str:
    """One statement of the plan, in Spark SQL."""
    trees = sqlglot.parse(sql, read="duckdb")
    if len(trees) != 1 or trees[0] is None:
        raise ValueError(f"expected one SQL statement, got {len(trees)}: {sql[:120]}")
    return trees[0].sql(dialect=PlanSpark)
