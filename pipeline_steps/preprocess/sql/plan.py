"""The preparation plan: the feature spec -> SQL statements, the same for every engine.

Written in DuckDB's dialect, kept to portable SQL (no GROUP BY ALL, EXCLUDE, FILTER clauses,
count_if...) so that another engine runs the same plan after a transpiler (sqlglot) rewrites
it.  The few engine-specific pieces (hashing, sharding) come in through `Functions`; reading
files and writing outputs belong to the executor (`duckdb_engine.py`).

Relations the executor provides, per table T ("entities", "history"):
  T_raw: the spec's columns as read (text from CSV, typed from Parquet) plus `_file` (index of
  the file in the sorted input list), `_row` (1-based row within the file) and `_source_file`.

Relations the plan creates (in this order, each from the ones before):
  T_flagged         the rows a cheap test suspects (a few percent): their input columns,
                    position, flag words (every check once), `_ok`, `_mine`
  T_bad (view)      rejected rows: original text, source file/row, reason code and full text
  T_involved        the input rows whose key may repeat (one grouping per entity)
  T_dups            later occurrences of a key among the rows that passed (exact or key)
  T_kept            rows that passed, without duplicates: the input less the few rejected and
                    duplicate rows (an anti-join by position); the history's is a view
  entities_kept     every kept entity (all hosts agree on it; the split is decided on it)
  features          this host's kept entities + point-in-time aggregates + ratios + `_split`

Rules (the ones the step has always had): null tokens; number/integer/boolean/date/category
parsing; ranges; every problem of a row in its reason text, the first one as its code; the
first occurrence of a key kept (file order, then row order), later ones quarantined as exact
duplicates (every column's text equal) or repeated keys; aggregates over whole months before
the entity's month; ratios with a zero denominator are null; time-split cut dates over every
kept entity, so one host or many agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_steps.common.feature_spec import Column, FeatureSpec

NULL_TEXT = ("", "na", "n/a", "nan", "null", "none", "<na>")
TRUE_TEXT = ("1", "true", "t", "yes", "y")
FALSE_TEXT = ("0", "false", "f", "no", "n")
# Raw column kinds the executor reports (how a column was stored, not what the spec says).
KINDS = ("text", "integer", "float", "boolean", "date")
FLOAT_MAX = 1.7976931348623157e308  # the largest finite double
AGGREGATES = {"mean": "avg", "sum": "sum", "max": "max", "min": "min", "count": "count", "std": "stddev_samp"}
SPLITS = ("train", "validation", "test")
POSITION = 4294967296  # _pos = _file * POSITION + _row: file order, then row order


def q(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: Any) -> str:
    """A string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def lits(values: Sequence[Any]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


def _case_flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


@dataclass(frozen=True)
class Functions:
    """The engine-specific expressions a plan needs (DuckDB's by default)."""

    # One 64-bit hash of several expressions (finding duplicate-key candidates cheaply).
    hash: Callable[[Sequence[str]], str] = lambda exprs: f"hash({', '.join(exprs)})"
    # 0..n-1 for a text expression: the host that owns the row.
    shard: Callable[[str, int], str] = lambda expr, n: f"CAST(hash({expr}) % {n} AS INTEGER)"
    # A text expression's seeded hash, ordered the same way on every engine (md5 is in both).
    seeded: Callable[[str, int], str] = lambda expr, seed: f"md5({lit(f'{seed}:')} || {expr})"
    # Check only the rows a cheap test over the input suspects (`TablePlan._suspect`).  Spark's
    # optimizer pushes that filter into its CSV reading and then takes minutes to compile the
    # flag words of the 400 test rows (measured: 118 s against 2.4 s without the filter), so
    # Spark checks every row, as the plan did before the filter.
    prefilter: bool = True
    # A table made by a query with ORDER BY is read back in that order (DuckDB keeps a table's
    # insertion order when asked to): `features` is then sorted once by input position and the six
    # outputs read from it need no sort of their own.  Spark's tables keep no order: each output
    # is sorted as it is written.
    ordered_tables: bool = True


@dataclass(frozen=True)
class Share:
    """Which part of the data this host owns: rows whose partition key hashes to `index`."""

    index: int = 0
    count: int = 1


@dataclass(frozen=True)
class LabelRule:
    """The label column's two classes (normalised text) and how to write it."""

    positives: tuple[str, ...]
    negative: str | None
    as_integer: bool  # every kept label is a whole number: write 1/0, else the trimmed text


def normalise_label(value: Any) -> str:
    """A label value as comparable text, as the SQL does: '1.0' and 1 -> '1', 'Yes ' -> 'yes'."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text.lower()
    if math.isfinite(number) and number == round(number):
        return str(int(number))
    return text.lower()


@dataclass(frozen=True)
class Rule:
    column: Column
    role: str  # id, time, label, key, column

    @property
    def name(self) -> str:
        return self.column.name


def _token_like(text: str) -> str:
    """True for text that may be a null token: short, or with a space at either end (a null token,
    once trimmed of spaces, is at most this long)."""
    longest = max(len(t) for t in NULL_TEXT)
    return f"(length({text}) <= {longest} OR {text} LIKE ' %' OR {text} LIKE '% ')"


def _n(name: str) -> str:
    return q(f"{name}__null")


def _v(name: str) -> str:
    return q(f"{name}__v")


def _r(name: str) -> str:
    return q(f"{name}__r")


@dataclass
class TablePlan:
    """Validation and de-duplication of one table, as SQL over `<table>_raw`."""

    table: str
    rules: list[Rule]
    key: list[str]
    kinds: dict[str, str]
    partition: str  # the column whose clean value decides the host that owns a row
    share: Share = field(default_factory=Share)
    label: LabelRule | None = None
    functions: Functions = field(default_factory=Functions)
    generated_id: str | None = None  # a rule of this name is made from file name and row number
    # True: every row is validated and de-duplicated here (the small entity table, so that all hosts
    # agree on the kept entities); False: only this host's share (the history).
    whole: bool = False

    @property
    def _share(self) -> str:
        return "" if self.whole else " AND _mine"

    # ---- per-column expressions ----------------------------------------------------------
    def _raw(self, name: str, alias: str = "") -> str:
        if name == self.generated_id:
            return f"({alias}_source_file || ':' || CAST({alias}_row AS VARCHAR))"
        return alias + q(name)

    def _kind(self, name: str) -> str:
        return "text" if name == self.generated_id else self.kinds.get(name, "text")

    def _text(self, name: str, alias: str = "") -> str:
        """The original value as text (quarantine, reasons): computed only for the rows that need
        it (joined back to the input by position), never for every row."""
        raw = self._raw(name, alias)
        kind = self._kind(name)
        if kind == "text":
            return raw
        if kind == "date":
            return f"strftime({raw}, '%Y-%m-%d')"
        return f"CAST({raw} AS VARCHAR)"

    def _null(self, name: str) -> str:
        raw, kind = self._raw(name), self._kind(name)
        if kind == "text":
            return f"({raw} IS NULL OR lower(trim({raw})) IN {lits(NULL_TEXT)})"
        if kind == "float":
            return f"({raw} IS NULL OR isnan({raw}))"
        return f"({raw} IS NULL)"

    def _parsed(self, rule: Rule) -> str:
        """The value parsed to the spec type (null where it does not parse)."""
        col, raw, kind = rule.column, self._raw(rule.name), self._kind(rule.name)
        text = self._text(rule.name)
        if rule.role == "label":
            return self._label_norm(f"trim({text})")
        if col.type in ("number", "integer"):
            if kind in ("integer", "float"):
                return f"CAST({raw} AS DOUBLE)"
            if kind == "boolean":
                return f"CASE WHEN {raw} THEN 1.0 ELSE 0.0 END"
            if kind == "date":
                return "CAST(NULL AS DOUBLE)"
            return f"TRY_CAST(trim({raw}) AS DOUBLE)"
        if col.type == "boolean":
            if kind == "boolean":
                return f"CASE WHEN {raw} THEN 1.0 ELSE 0.0 END"
            if kind in ("integer", "float"):
                return f"CAST({raw} AS DOUBLE)"
            low = f"lower(trim({text}))"
            return (
                f"CASE WHEN {low} IN {lits(TRUE_TEXT)} THEN 1.0 WHEN {low} IN {lits(FALSE_TEXT)} THEN 0.0 END"
            )
        if col.type == "date":
            if kind == "date":
                return f"CAST({raw} AS TIMESTAMP)"
            if kind != "text":
                return "CAST(NULL AS TIMESTAMP)"
            return f"TRY_CAST(trim({raw}) AS TIMESTAMP)"
        return text  # category, string: the text as it is

    def _problems(self, rule: Rule, n: str = "", v: str = "") -> list[tuple[str, str, str]]:
        """[(condition, reason code, reason text as SQL)] in the step's order, over layer 1 (or over
        the given null test `n` and parsed value `v`); problems that cannot happen to a value stored
        as it is (a Parquet integer always parses) are left out."""
        col, name, role = rule.column, rule.name, rule.role
        n, v, t = n or _n(name), v or _v(name), self._text(name, "r.")
        quoted = f"'''' || {t} || ''''"  # the value as Python's repr shows a plain string
        out = []
        if self.null_is_problem(rule):
            what = role if role != "column" else "not nullable"
            code = f"missing_{role if role != 'column' else 'required'}:{name}"
            out.append((n, code, lit(f"{name}: missing ({what})")))
        if role == "label":
            assert self.label is not None, "a label rule needs the label's classes"
            known = [*self.label.positives, *([self.label.negative] if self.label.negative else [])]
            cond = f"(NOT {n} AND {v} NOT IN {lits(known or [''])})"
            out.append(
                (cond, f"unparseable:{name}", f"{lit(name + ': ')} || {quoted} || ' is not a valid string'")
            )
            return out
        kind = self._kind(name)
        if col.type in ("number", "integer"):
            # What can go wrong depends on how the value was stored: a Parquet integer always parses.
            if kind == "integer":
                bad = "FALSE"
            elif kind == "float":  # NaN is a null; infinities and (for integers) fractions are not numbers
                bad = f"(NOT ({v} - {v} = 0)" + (f" OR {v} <> round({v}))" if col.type == "integer" else ")")
            else:
                bad = f"({v} IS NULL OR NOT ({v} - {v} = 0)" + (
                    f" OR {v} <> round({v}))" if col.type == "integer" else ")"
                )
            if bad != "FALSE":
                out.append(
                    (
                        f"(NOT {n} AND {bad})",
                        f"unparseable:{name}",
                        f"{lit(name + ': ')} || {quoted} || {lit(' is not a valid ' + col.type)}",
                    )
                )
            parsed = f"NOT {n}" if bad == "FALSE" else f"NOT {n} AND NOT {bad}"
            ranges = ([f"{v} < {col.min!r}"] if col.min is not None else []) + (
                [f"{v} > {col.max!r}"] if col.max is not None else []
            )
            if ranges:
                lo = col.min if col.min is not None else "-inf"
                hi = col.max if col.max is not None else "inf"
                out.append(
                    (
                        f"({parsed} AND ({' OR '.join(ranges)}))",
                        f"out_of_range:{name}",
                        f"{lit(name + ': ')} || {t} || {lit(f' is outside [{lo}, {hi}]')}",
                    )
                )
        elif col.type in ("boolean", "date") and kind != col.type:  # a stored boolean/date always parses
            out.append(
                (
                    f"(NOT {n} AND {v} IS NULL)",
                    f"unparseable:{name}",
                    f"{lit(name + ': ')} || {quoted} || {lit(' is not a valid ' + col.type)}",
                )
            )
        elif col.type == "category":
            out.append(
                (
                    f"(NOT {n} AND {v} NOT IN {lits(col.categories)})",
                    f"unknown_category:{name}",
                    f"{lit(name + ': ')} || {quoted} || "
                    f"{lit(f' is not one of the categories {list(col.categories)}')}",
                )
            )
        return out

    @staticmethod
    def _label_norm(text: str) -> str:
        number = f"TRY_CAST({text} AS DOUBLE)"
        whole = f"({number} - {number} = 0 AND {number} = round({number}))"
        return f"CASE WHEN {whole} THEN CAST(CAST({number} AS BIGINT) AS VARCHAR) ELSE lower({text}) END"

    def _typed(self, rule: Rule, v: str) -> str:
        """A parsed value as the spec's type."""
        cast = {"number": "DOUBLE", "integer": "BIGINT", "boolean": "TINYINT", "date": "TIMESTAMP"}.get(
            rule.column.type
        )
        return f"CAST({v} AS {cast})" if cast else v

    def _value(self, rule: Rule) -> str:
        """The clean value: null where missing or invalid (over the flag words)."""
        v = _v(rule.name)
        ok = self._none_of([f"null:{rule.name}"] + [code for _, code, _ in self._problems(rule)])
        if rule.role == "label":
            assert self.label is not None
            if self.label.as_integer:
                positive = f"{v} IN {lits(self.label.positives or [''])}"
                return f"CAST(CASE WHEN {ok} THEN {_case_flag(positive)} END AS TINYINT)"
            return f"CASE WHEN {ok} THEN trim({_r(rule.name)}) END"
        return f"CASE WHEN {ok} THEN {self._typed(rule, v)} END"

    # ---- the same, straight from the input columns (no flag words) ---------------------------
    def _direct_value(self, rule: Rule) -> str:
        """`_value` computed from the input columns (the partition column, where no flag words are)."""
        assert rule.role != "label", "the label is never the partition column"
        n, v = f"({self._null(rule.name)})", f"({self._parsed(rule)})"
        bad = " OR ".join([n] + [cond for cond, _, _ in self._problems(rule, n, v)])
        return f"CASE WHEN {bad} THEN NULL ELSE {self._typed(rule, v)} END"

    def _positive(self) -> str:
        """1 for a positive label, else 0 (over the input columns)."""
        assert self.label is not None
        label = next(r for r in self.rules if r.role == "label")
        return _case_flag(f"{self._parsed(label)} IN {lits(self.label.positives or [''])}")

    def _kept_value(self, rule: Rule) -> str:
        """The clean value of a row known to have passed every check (over the input columns): only
        a nullable column's null is left to look at."""
        if rule.role == "label":
            assert self.label is not None
            if self.label.as_integer:
                return f"CAST({self._positive()} AS TINYINT)"
            return f"trim({self._text(rule.name)})"
        raw, kind = self._raw(rule.name), self._kind(rule.name)
        if rule.column.type == "integer" and kind == "integer":
            value = f"CAST({raw} AS BIGINT)"  # stored whole: no round trip through a double
        else:
            value = self._typed(rule, f"({self._parsed(rule)})")
        if rule.role != "column" or not rule.column.nullable or kind in ("integer", "date"):
            return value  # a stored null stays null (a boolean's CASE would make it 0): no test
        if kind == "float":
            return f"CASE WHEN isnan({raw}) THEN NULL ELSE {value} END"  # NaN is a null
        return f"CASE WHEN {self._null(rule.name)} THEN NULL ELSE {value} END"

    def _mine(self, partition_value: str) -> str:
        """Whether this host owns a row, from its partition column's clean value."""
        if self.share.count == 1:
            return "TRUE"
        shard = self.functions.shard(f"CAST({partition_value} AS VARCHAR)", self.share.count)
        return f"({shard} = {self.share.index})"

    @property
    def _partition_rule(self) -> Rule:
        return next(r for r in self.rules if r.name == self.partition)

    def null_is_problem(self, rule: Rule) -> bool:
        """Whether a missing value is a problem (the row is rejected) or merely counted."""
        return rule.role != "column" or not rule.column.nullable

    def _suspect(self, rule: Rule) -> str:
        """A cheap test over the input columns, true wherever one of the rule's problem flags would
        be set (and for a missing value where that is a problem), and maybe for a few more rows: the
        flag words are computed only for the rows some rule suspects (a few percent), not for every
        row.  A missing value of a nullable column is no problem: such rows are not suspected (at
        1M merchants 1.4M history rows have one), and the column's missing values are counted over
        the input only when its share of bad values needs them (`nulls_sql`)."""
        col, name, kind = rule.column, rule.name, self._kind(rule.name)
        raw = self._raw(name)
        required = self.null_is_problem(rule)
        missing = [f"{raw} IS NULL"] if required else []
        if name == self.generated_id:
            return "FALSE"  # '<file>:<row>' is never missing
        if rule.role != "label":
            if col.type in ("number", "integer") and kind in ("integer", "float"):
                # NaN sorts above every number and the infinities lie outside the finite doubles, in
                # both engines: the range tests catch them with the out-of-range values.
                lo = col.min if col.min is not None else (None if kind == "integer" else -FLOAT_MAX)
                hi = col.max if col.max is not None else (None if kind == "integer" else FLOAT_MAX)
                tests = missing + ([f"{raw} < {lo!r}"] if lo is not None else [])
                tests += [f"{raw} > {hi!r}"] if hi is not None else []
                tests += [f"{raw} <> round({raw})"] if kind == "float" and col.type == "integer" else []
                return "(" + " OR ".join(tests) + ")" if tests else "FALSE"
            if col.type in ("number", "integer") and kind == "text":
                # A null token or text that is not a number does not parse; 'nan' and 'inf' parse
                # to values outside the finite range.
                v = self._parsed(rule)
                lo = col.min if col.min is not None else -FLOAT_MAX
                hi = col.max if col.max is not None else FLOAT_MAX
                whole = f" AND {v} = round({v})" if col.type == "integer" else ""
                unparsed = "TRUE" if required else f"NOT {self._null(name)}"
                return f"coalesce(NOT ({v} >= {lo!r} AND {v} <= {hi!r}{whole}), {unparsed})"
            if col.type == "date" and kind == "text":
                # A null token does not parse either.
                unparsed = "" if required else f" AND NOT {self._null(name)}"
                return f"({self._parsed(rule)} IS NULL{unparsed})"
            if kind == "text" and col.type == "string":
                if not required:
                    return "FALSE"  # any text, or none: nothing to flag
                if name == self._grouped_key:
                    return f"({raw} IS NULL)"  # its text is tested once per value (`candidates_sql`)
                return f"({raw} IS NULL OR {_token_like(raw)})"
            fine = [c for c in col.categories if str(c).strip().lower() not in NULL_TEXT]
            if kind == "text" and col.type == "category" and fine:
                return "(" + " OR ".join(missing + [f"{raw} NOT IN {lits(fine)}"]) + ")"
            if kind == col.type or (col.type == "string" and kind in ("integer", "date", "boolean")):
                # Stored as it is meant: only a missing value can be flagged.
                return f"({raw} IS NULL)" if required else "FALSE"
        n, v = f"({self._null(name)})", f"({self._parsed(rule)})"
        if rule.role == "label":
            assert self.label is not None, "a label rule needs the label's classes"
            known = [*self.label.positives, *([self.label.negative] if self.label.negative else [])]
            return f"coalesce({n} OR {v} NOT IN {lits(known or [''])}, TRUE)"
        problems = [cond for cond, _, _ in self._problems(rule, n, v)]
        if not required:
            return f"coalesce({' OR '.join(problems)}, NOT {n})" if problems else "FALSE"
        return f"coalesce({' OR '.join([n] + problems)}, TRUE)"

    # ---- statements ----------------------------------------------------------------------
    def label_profile_sql(self) -> str:
        """Per normalised label value: rows and whether all are whole numbers (run before `flagged`)."""
        rule = next(r for r in self.rules if r.role == "label")
        text = f"trim({self._text(rule.name)})"
        norm = self._label_norm(text)
        number = f"TRY_CAST({text} AS DOUBLE)"
        whole = f"({number} - {number} = 0 AND {number} = round({number}))"
        return (
            f"SELECT _norm, count(*) AS _rows FROM (SELECT {norm} AS _norm, {_case_flag(whole)} AS _whole "
            f"FROM {self.table}_raw WHERE NOT {self._null(rule.name)}) l "
            "GROUP BY _norm ORDER BY _rows DESC, _norm"
        )

    def _input_columns(self) -> list[str]:
        """The input's columns as read (a generated id is made from `_source_file` and `_row`)."""
        names = [q(r.name) for r in self.rules if r.name != self.generated_id]
        return names + ["_file", "_row", "_source_file"]

    def flagged_sql(self) -> str:
        """Every row some check suspects (a null or a problem, in any host's share) or whose entity
        may repeat a key (`_involved`): its input columns, position, flag words, `_ok` (no problem)
        and `_mine`.  Rows no check suspects (nearly all) are not stored: later statements read the
        input again, which costs less.  A row that is not suspected has no flag set."""
        layer1 = []
        for rule in self.rules:
            layer1 += [
                f"{self._null(rule.name)} AS {_n(rule.name)}",
                f"{self._parsed(rule)} AS {_v(rule.name)}",
            ]
        flags = []
        for w, word in enumerate(self._flag_words()):
            bits = " + ".join(
                f"CASE WHEN {cond} THEN {1 << b} ELSE 0 END" for b, (cond, _) in enumerate(word)
            )
            flags.append(f"CAST({bits} AS BIGINT) AS _flags{w}")
        words = [f"_flags{w}" for w in range(len(self._flag_words()))]
        inputs = ", ".join(self._input_columns())
        part = self._partition_rule
        suspect = " OR ".join(self._suspect(r) for r in self.rules) if self.functions.prefilter else "TRUE"
        problems = [code for rule in self.rules for _, code, _ in self._problems(rule)]
        # The same scan keeps the rows of entities that may repeat a key (`<t>_candidates`), so the
        # duplicates are found without reading the input again.  A join, not IN (subquery): Spark
        # takes a subquery only in a filter.
        involved = self._involved()
        l1 = (
            f"SELECT {inputs}, {', '.join(layer1)}, {involved} AS _involved FROM {self.table}_raw "
            f"LEFT JOIN {self.table}_candidates c ON c._k = {self._keyed(self.key[0])} "
            f"WHERE {suspect} OR {involved}"
        )
        l2 = (
            f"SELECT {inputs}, {_v(part.name)}, {', '.join(flags)}, _file * {POSITION} + _row AS _pos, "
            f"_involved FROM ({l1}) l1"
        )
        # A suspected row may have no flag set after all: it is kept (harmless: `_ok`, no bits), as
        # a filter on the words would compute every check twice (DuckDB inlines it into the scan).
        return (
            f"SELECT {inputs}, _pos, {', '.join(words)}, {self._none_of(problems)} AS _ok, "
            f"{self._mine(self._value(part))} AS _mine, _involved FROM ({l2}) l2"
        )

    def _none_of(self, flags: list[str], alias: str = "") -> str:
        """True when none of the named flags is set (bit tests on the flag words)."""
        masks: dict[int, int] = {}
        for w, word in enumerate(self._flag_words()):
            for b, (_, flag) in enumerate(word):
                if flag in flags:
                    masks[w] = masks.get(w, 0) | (1 << b)
        tests = [f"({alias}_flags{w} & {m}) = 0" for w, m in sorted(masks.items())]
        return "(" + " AND ".join(tests) + ")" if tests else "TRUE"

    def _first_code(self, alias: str = "") -> str:
        """The code of a rejected row's first problem (in the spec's column order)."""
        whens = [
            f"WHEN {self._flag_test(code, alias)} THEN {lit(code)}"
            for rule in self.rules
            for _, code, _ in self._problems(rule)
        ]
        return ("CASE " + " ".join(whens) + " END") if whens else "CAST(NULL AS VARCHAR)"

    def _flag_list(self) -> list[tuple[str, str]]:
        """(condition, name) of every counted flag: each column's null, then each problem."""
        out = []
        for rule in self.rules:
            out.append((_n(rule.name), f"null:{rule.name}"))
            out += [(cond, code) for cond, code, _ in self._problems(rule)]
        return out

    def _flag_words(self) -> list[list[tuple[str, str]]]:
        """The flags in words of 62 bits (a BIGINT each)."""
        flags = self._flag_list()
        return [flags[i : i + 62] for i in range(0, len(flags), 62)] or [[("FALSE", "none")]]

    def _flag_test(self, name: str, alias: str = "") -> str:
        for w, word in enumerate(self._flag_words()):
            for b, (_, flag) in enumerate(word):
                if flag == name:
                    return f"(({alias}_flags{w} & {1 << b}) <> 0)"
        raise KeyError(name)

    def stats_sql(self) -> str:
        """Flagged rows per combination of flags (a few rows): the counts for the schema checks."""
        words = ", ".join(f"_flags{w}" for w in range(len(self._flag_words())))
        return f"SELECT {words}, count(*) FROM {self.table}_flagged GROUP BY {words}"

    def totals_sql(self) -> str:
        """(rows in, this host's rows in): every host's rows are checked, only its share is kept."""
        if self.share.count == 1:
            return f"SELECT count(*), count(*) FROM {self.table}_raw"
        mine = self._mine(self._direct_value(self._partition_rule))
        return f"SELECT count(*), sum({_case_flag(mine)}) FROM {self.table}_raw"

    def stats(self, rows: list[tuple[Any, ...]], totals: tuple[Any, ...]) -> dict[str, int]:
        """stats_sql's rows and totals_sql's row -> {"rows", "mine", "<code>": count, and
        "null:<column>" for the columns whose missing values are problems}.  A nullable column's
        missing values are not all among the flagged rows: `nulls_sql` counts them."""
        words = self._flag_words()
        out = {"rows": int(totals[0] or 0), "mine": int(totals[1] or 0)}
        out.update({flag: 0 for word in words for _, flag in word})
        for row in rows:
            for w, word in enumerate(words):
                for b, (_, flag) in enumerate(word):
                    if int(row[w]) & (1 << b):
                        out[flag] += int(row[len(words)])
        for rule in self.rules:
            if not self.null_is_problem(rule):
                del out[f"null:{rule.name}"]
        return out

    def nulls_sql(self, name: str) -> str:
        """A column's missing values over every input row (one scan of that column)."""
        return f"SELECT sum({_case_flag(self._null(name))}) FROM {self.table}_raw"

    def _input(self) -> str:
        """The input with each row's position (file order, then row order)."""
        return f"(SELECT *, _file * {POSITION} + _row AS _pos FROM {self.table}_raw)"

    def examples_sql(self, code: str, limit: int = 50) -> str:
        name = code.split(":", 1)[1]
        return (
            f"SELECT {self._text(name, 'r.')} FROM {self.table}_flagged r "
            f"WHERE {self._flag_test(code, 'r.')} AND {self._raw(name, 'r.')} IS NOT NULL "
            f"ORDER BY r._pos LIMIT {limit}"
        )

    def _texts(self, alias: str = "") -> list[str]:
        return [f"{self._text(r.name, alias)} AS {q(r.name)}" for r in self.rules]

    def bad_sql(self) -> str:
        """This host's rejected rows (row-level problems): the original text, where it came from,
        the first reason's code and every reason in words."""
        messages = [
            f"CASE WHEN {self._flag_test(code, 'r.')} THEN {msg} END"
            for rule in self.rules
            for _, code, msg in self._problems(rule)
        ]
        reason = f"concat_ws('; ', {', '.join(messages)})" if messages else "CAST(NULL AS VARCHAR)"
        share = "" if self.whole else " AND r._mine"
        return (
            f"SELECT {lit(self.table)} AS _table, {', '.join(self._texts('r.'))}, r._source_file, "
            f"r._row AS _row_number, {self._first_code('r.')} AS _code, {reason} AS _reason, r._pos, r._mine "
            f"FROM {self.table}_flagged r WHERE NOT r._ok{share}"
        )

    def _keyed(self, name: str) -> str:
        """A key column's value as compared for duplicates (dates as days), over the input columns:
        for a row that passed, its clean value."""
        rule = next(r for r in self.rules if r.name == name)
        if rule.column.type == "date" and self._kind(name) == "date":
            return f"CAST({self._raw(name)} AS DATE)"
        parsed = self._parsed(rule)
        return f"CAST({parsed} AS DATE)" if rule.column.type == "date" else parsed

    def _slot(self, name: str) -> str:
        """0..61 from a key column's value: a date's month (different months of 62 in a row never
        share a slot), anything else its hash."""
        rule = next(r for r in self.rules if r.name == name)
        v = self._keyed(name)
        if rule.column.type == "date":
            return f"CAST(((year({v}) * 12 + month({v})) % 62 + 62) % 62 AS INTEGER)"
        return f"CAST(({self.functions.hash([v])} % 62 + 62) % 62 AS INTEGER)"

    @property
    def _grouped_key(self) -> str | None:
        """The first key column when it is text kept as it is (its value is the grouping key of
        `candidates_sql`): its null-token test is done there, once per distinct value (1M merchants)
        instead of once per row (26M history rows)."""
        name = self.key[0]
        rule = next(r for r in self.rules if r.name == name)
        plain = self._kind(name) == "text" and rule.column.type == "string"
        return name if plain and name != self.generated_id else None

    def candidates_sql(self) -> str:
        """`<t>_candidates`: every first key column value (the entity) that may have a repeated key,
        found by one grouping over the input (before `flagged_sql`, which keeps their rows): more
        rows than distinct slots of the other key columns (for a monthly history: months).
        Grouping by the entity (a million groups at a million merchants) instead of by the whole
        key (26 million) keeps the grouping in memory.  Also every value that may be a null token
        (see `_grouped_key`): all its rows are kept, and checked.

        `_mask`: the slots whose rows to keep (bit s: slot s).  Slots seen an even number of times
        (`bit_or & ~bit_xor`) repeat; when that accounts for every row (each repeated slot seen
        exactly twice: rows = slots + repeated slots) they are all that repeat, else every slot is
        kept.  At 1M merchants that keeps the 129k rows of repeated keys, not the 1.6M rows of the
        62k merchants that have one."""
        first = self._keyed(self.key[0])
        token = _token_like("_k") if self._grouped_key else "FALSE"
        if len(self.key) == 1:
            keys_of = f"SELECT {first} AS _k FROM {self.table}_raw"
            return (
                f"SELECT _k, CAST(-1 AS BIGINT) AS _mask FROM ({keys_of}) c WHERE _k IS NOT NULL "
                f"GROUP BY _k HAVING count(*) > 1 OR {token}"
            )
        bit = "(CAST(1 AS BIGINT) << _s)"
        grouped = (
            f"SELECT _k, count(*) AS _rows, count(_s) AS _slotted, bit_or({bit}) AS _seen, "
            f"bit_or({bit}) & ~bit_xor({bit}) AS _even "
            f"FROM (SELECT {first} AS _k, {self._slot(self.key[1])} AS _s FROM {self.table}_raw) c "
            "WHERE _k IS NOT NULL GROUP BY _k"
        )
        return (
            f"SELECT _k, CASE WHEN NOT {token} AND _slotted = bit_count(_seen) + bit_count(_even) "
            f"THEN _even ELSE CAST(-1 AS BIGINT) END AS _mask FROM ({grouped}) g "
            f"WHERE _rows > bit_count(_seen) OR {token}"
        )

    def _involved(self) -> str:
        """Whether an input row (joined to `<t>_candidates` as c) may repeat a key (or its first key
        column may be a null token)."""
        if len(self.key) == 1:
            return "c._k IS NOT NULL"
        return f"(c._k IS NOT NULL AND ((c._mask >> {self._slot(self.key[1])}) & 1) = 1)"

    def dup_statements(self) -> list[tuple[str, str]]:
        """(view name, SQL), (table name, SQL): the later occurrences of a key among the rows that
        passed, as quarantine rows.  Every host's rows are looked at where the whole table is (so the
        first occurrence is the same whichever host owns a copy); `_mine` says whose each is.

        `<t>_involved`: the kept input rows of the candidate entities (`candidates_sql`); among
        those that passed the checks, the real keys decide."""
        t = self.table
        keys = [f"_k{i}" for i in range(len(self.key))]
        keyed = ", ".join(f"{self._keyed(k)} AS {n}" for k, n in zip(self.key, keys, strict=True))
        involved = (
            f"SELECT {', '.join(self._input_columns())}, _pos, _ok, {keyed} FROM {t}_flagged WHERE _involved"
        )
        mine = self._mine(self._direct_value(self._partition_rule))
        passed = f"SELECT {', '.join(keys)}, _pos, {mine} AS _mine FROM {t}_involved WHERE _ok"
        share = "" if self.whole else " WHERE _mine"
        firsts = (
            f"SELECT {', '.join(keys)}, min(_pos) AS _first FROM valid "
            f"GROUP BY {', '.join(keys)} HAVING count(*) > 1"
        )
        same_key = " AND ".join(f"r.{k} = f.{k}" for k in keys)
        pairs = (
            f"WITH passed AS ({passed}), valid AS (SELECT * FROM passed{share}), firsts AS ({firsts}) "
            "SELECT r._pos, f._first, r._mine FROM valid r "
            f"JOIN firsts f ON {same_key} AND r._pos <> f._first"
        )
        exact = " AND ".join(
            f"{self._raw(r.name, 'r.')} IS NOT DISTINCT FROM {self._raw(r.name, 'o.')}" for r in self.rules
        )
        where = "'row ' || CAST(o._row AS VARCHAR) || ' of ' || o._source_file"
        key_text = (
            "concat_ws(' ', " + ", ".join(f"coalesce({self._text(k, 'r.')}, '')" for k in self.key) + ")"
        )
        joined = "+".join(self.key)
        dups = (
            f"SELECT {lit(self.table)} AS _table, {', '.join(self._texts('r.'))}, r._source_file, "
            f"r._row AS _row_number, CASE WHEN {exact} THEN 'exact_duplicate' "
            f"ELSE {lit('duplicate_key:' + joined)} END AS _code, "
            f"CASE WHEN {exact} THEN 'exact duplicate of ' || {where} "
            f"ELSE {lit('duplicate ' + joined + ' ')} || '''' || {key_text} || ''' (first at ' "
            f"|| {where} || ')' END AS _reason, p._pos, p._mine "
            f"FROM ({pairs}) p JOIN {t}_involved r ON r._pos = p._pos "
            f"JOIN {t}_involved o ON o._pos = p._first"
        )
        return [(f"{t}_involved", involved), (f"{t}_dups", dups)]

    def kept_sql(self) -> str:
        """The rows that passed, without duplicates, with clean values: the input, less the rejected
        rows and the duplicates (both few, found by position)."""
        t = self.table
        values = [f"{self._kept_value(r)} AS {q(r.name)}" for r in self.rules]
        if self.label is not None:
            values.append(f"{self._positive()} AS _positive")
        mine = self._mine(self._kept_value(self._partition_rule))
        # One anti-join with the few rows to drop (a probe per input row), not one per kind.
        dropped = f"SELECT _pos FROM {t}_flagged WHERE NOT _ok UNION ALL SELECT _pos FROM {t}_dups"
        kept = (
            f"SELECT {', '.join(values)}, r._pos, {mine} AS _mine FROM {self._input()} r "
            f"WHERE NOT EXISTS (SELECT 1 FROM ({dropped}) d WHERE d._pos = r._pos)"
        )
        if self.whole or self.share.count == 1:
            return kept
        return f"SELECT * FROM ({kept}) k WHERE _mine"


# ---- the whole plan ---------------------------------------------------------------------------
def entity_rules(spec: FeatureSpec) -> list[Rule]:
    """id, time (when in the data), label, then the spec's columns; the generated id is checked too."""
    rules = [Rule(Column(spec.entity_id, "string"), "id")]
    rules += [Rule(Column(spec.entity_time, "date"), "time")] if spec.time_in_data else []
    rules.append(Rule(Column(spec.label, "string"), "label"))
    return rules + [Rule(c, "key" if c.name == spec.entity_key else "column") for c in spec.columns]


def history_rules(spec: FeatureSpec) -> list[Rule]:
    h = spec.history
    assert h is not None, "called only for a spec with a history table"
    return [Rule(Column(h.key, "string"), "key"), Rule(Column(h.time, "date"), "time")] + [
        Rule(c, "column") for c in h.columns
    ]


def entity_plan(
    spec: FeatureSpec,
    kinds: dict[str, str],
    share: Share,
    functions: Functions,
    label: LabelRule | None = None,
) -> TablePlan:
    partition = spec.entity_key if spec.history and spec.entity_key else spec.entity_id
    return TablePlan(
        "entities",
        entity_rules(spec),
        [spec.entity_id],
        kinds,
        partition,
        share,
        label,
        functions,
        None if spec.id_in_data else spec.entity_id,
        whole=True,
    )


def history_plan(spec: FeatureSpec, kinds: dict[str, str], share: Share, functions: Functions) -> TablePlan:
    h = spec.history
    assert h is not None
    return TablePlan("history", history_rules(spec), [h.key, h.time], kinds, h.key, share, None, functions)


def label_rule(
    spec: FeatureSpec, profile: list[tuple[str, int]], max_invalid: float
) -> tuple[LabelRule, str | None]:
    """The label's classes from its profile [(normalised value, rows)], most frequent first.
    Returns the rule and, when there are more than two classes in force, the error message."""
    positives = tuple(dict.fromkeys(normalise_label(v) for v in spec.positive_labels))
    others = [(v, n) for v, n in profile if v not in positives]
    negative = others[0][0] if others else None
    present = sum(n for _, n in profile)
    unexpected = sum(n for _, n in others[1:])
    error = None
    if present and unexpected / present > max_invalid:
        error = (
            f"entities label '{spec.label}': more than two distinct values "
            f"{sorted(v for v, _ in others)[:6]} with positive {list(spec.positive_labels)}"
        )
    kept = [v for v, _ in profile if v in positives or v == negative]
    as_integer = bool(kept) and all(_whole(v) for v in kept)
    return LabelRule(positives, negative, as_integer), error


def _whole(norm: str) -> bool:
    try:
        int(norm)
    except ValueError:
        return False
    return True


def features_sql(spec: FeatureSpec, as_of: str | None) -> str:
    """This host's kept entities with point-in-time aggregates and ratios, `_positive` (0/1) and `_pos`.
    `as_of` (ISO timestamp) is the entity time when the data has no time column."""
    ids, label = q(spec.entity_id), q(spec.label)
    when = q(spec.entity_time) if spec.time_in_data else f"CAST({lit(as_of)} AS TIMESTAMP)"
    columns = [f"e.{q(c.name)}" for c in spec.columns]
    base = (
        f"SELECT e.{ids}, {when} AS {q(spec.entity_time)}, e.{label}, {', '.join(columns)}, "
        "e._positive, e._pos"
    )
    if spec.history and spec.entity_key:
        h = spec.history
        month = "(year({t}) * 12 + month({t}))"
        aggs = []
        longest = max(a.months for a in h.aggregates)
        for a in h.aggregates:
            # The join keeps the `longest` months before the entity's: only shorter windows test.
            column = f"h.{q(a.column)}"
            if a.months < longest:
                column = f"CASE WHEN h._m >= e._m - {a.months} THEN {column} END"
            kind = "BIGINT" if a.fn == "count" else "DOUBLE"  # counts are whole; the rest are numbers
            aggs.append(f"CAST({AGGREGATES[a.fn]}({column}) AS {kind}) AS {q(a.name)}")
        hist_cols = ", ".join(dict.fromkeys(q(a.column) for a in h.aggregates))
        agg = (
            f"SELECT e._pos, {', '.join(aggs)} FROM (SELECT _pos, {q(spec.entity_key)} AS _k, "
            f"{month.format(t=when.replace('e.', ''))} AS _m FROM entities_kept WHERE _mine) e "
            f"JOIN (SELECT {q(h.key)} AS _k, {month.format(t=q(h.time))} AS _m, {hist_cols} "
            "FROM history_kept) h "
            f"ON e._k = h._k AND h._m BETWEEN e._m - {longest} AND e._m - 1 GROUP BY e._pos"
        )
        counts = {a.name for a in h.aggregates if a.fn == "count"}
        picked = ", ".join(
            f"coalesce(a.{q(a_.name)}, 0) AS {q(a_.name)}" if a_.name in counts else f"a.{q(a_.name)}"
            for a_ in h.aggregates
        )
        base += f", {picked} FROM entities_kept e LEFT JOIN ({agg}) a ON a._pos = e._pos WHERE e._mine"
    else:
        base += " FROM entities_kept e WHERE e._mine"
    derived = "".join(
        f", CAST({q(d.numerator)} AS DOUBLE) / NULLIF(CAST({q(d.denominator)} AS DOUBLE), 0) AS {q(d.name)}"
        for d in spec.derived
    )
    return f"SELECT *{derived} FROM ({base}) b"


def split_expr(spec: FeatureSpec, validation_start: str | None, test_start: str | None) -> str:
    """0 train, 1 validation, 2 test by the entity time (a time split)."""
    when = q(spec.entity_time)
    return (
        f"CASE WHEN {when} < CAST({lit(validation_start)} AS TIMESTAMP) THEN 0 "
        f"WHEN {when} < CAST({lit(test_start)} AS TIMESTAMP) THEN 1 ELSE 2 END"
    )


def time_profile_sql(spec: FeatureSpec) -> str:
    """Kept entities per time (every host's), for the global cut dates."""
    when = q(spec.entity_time)
    return f"SELECT {when}, count(*) FROM entities_kept GROUP BY {when} ORDER BY {when}"


def cut_positions(n: int, validation_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Positions (0-based, in time order) of the first validation and first test row."""
    v_at = min(int(math.floor(n * (1 - validation_fraction - test_fraction))), n - 1)
    t_at = min(int(math.floor(n * (1 - test_fraction))), n - 1)
    return v_at, t_at


def class_sizes_sql(spec: FeatureSpec) -> str:
    """Kept entities per class (positive 1/0), every host's: the stratified split's sizes."""
    return "SELECT _positive, count(*) FROM entities_kept GROUP BY _positive"


def random_cuts(
    sizes: dict[int, int], validation_fraction: float, test_fraction: float
) -> dict[int, tuple[int, int]]:
    """Per class: the rank of its first validation and first test row (Python's round, as always)."""
    return {
        c: (int(round(n * (1 - validation_fraction - test_fraction))), int(round(n * (1 - test_fraction))))
        for c, n in sizes.items()
    }


def random_split_sql(spec: FeatureSpec, functions: Functions, cuts: dict[int, tuple[int, int]]) -> str:
    """(_pos, _split) for data without a time column: within each label class, rows ordered by a
    seeded hash of their id (then the id) and cut at the spec's fractions, over every kept entity."""
    ids = q(spec.entity_id)
    order = f"{functions.seeded(f'CAST({ids} AS VARCHAR)', spec.split_seed)}, {ids}"
    v_at = "CASE _p " + " ".join(f"WHEN {c} THEN {v}" for c, (v, _) in cuts.items()) + " END"
    t_at = "CASE _p " + " ".join(f"WHEN {c} THEN {t}" for c, (_, t) in cuts.items()) + " END"
    return (
        f"SELECT _pos, CASE WHEN _r < {v_at} THEN 0 WHEN _r < {t_at} THEN 1 ELSE 2 END AS _split FROM "
        f"(SELECT _pos, _p, row_number() OVER (PARTITION BY _p ORDER BY {order}) - 1 AS _r FROM "
        f"(SELECT _pos, {ids}, _positive AS _p FROM entities_kept) k) r"
    )


def split_summary_sql(spec: FeatureSpec) -> str:
    when = q(spec.entity_time)
    return (
        f"SELECT _split, count(*), min({when}), max({when}), sum(_positive) FROM features "
        "GROUP BY _split ORDER BY _split"
    )


def output_columns(spec: FeatureSpec) -> list[str]:
    return [spec.entity_id, spec.entity_time, spec.label, *spec.feature_names]
