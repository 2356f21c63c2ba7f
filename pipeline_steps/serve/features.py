"""Raw request records -> the model matrix, fast: column maps compiled once from the spec.

This is the serving path of `pipeline_steps.common.transform` (records_to_frame + model_matrix)
without a pandas frame per request: the same category codes from the spec's lists, the same
booleans, the same ratios (a zero or missing denominator gives NaN), the same float32 matrix.
`tests/test_steps_serve_features.py` proves both give the same matrix on every spec feature kind,
with missing values, numbers as text and (under the `missing` policy) unknown categories.

It also applies the serving input policy, which training's quarantine rules set: a value that
preprocessing would quarantine (not a number, not finite, out of the spec's range, an unknown
category, a non-integer for an integer column) is refused with a 400 naming the record and
column, never scored silently.  A missing value (empty cell, null, absent column) is scored as
missing, which the model learned to route.  With `unknown_category="missing"` an unknown
category is scored as missing instead and the response says so in `warnings`.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.common.transform import _FALSE, _TRUE
from pipeline_steps.serve.errors import RequestError

NAN = float("nan")
_LARGEST = sys.float_info.max


def csv_columns(spec: FeatureSpec) -> list[str]:
    """The columns of a header-less CSV line, in order: the entity columns, then aggregates."""
    return [c.name for c in spec.columns] + spec.aggregate_names


def serving_columns(spec: FeatureSpec) -> list[str]:
    """Every column a request may name: the model's raw inputs plus the entity id and time."""
    return [spec.entity_id, spec.entity_time] + csv_columns(spec)


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # a spec type
    index: int | None  # position in the model matrix; None: not a model input
    lo: float | None
    hi: float | None
    categories: Mapping[str, float]


@dataclass
class Encoded:
    matrix: np.ndarray  # float32, one row per record, columns = spec.model_features
    ids: list[Any]  # the entity id of each record, None when not sent
    warnings: list[list[str]]  # per record; empty lists when nothing was substituted


class FeatureEncoder:
    def __init__(self, spec: FeatureSpec, *, unknown_category: str = "reject"):
        self.spec = spec
        self.unknown_category = unknown_category
        self.features = list(spec.model_features)
        position = {name: j for j, name in enumerate(self.features)}
        self.csv_columns = csv_columns(spec)
        self.known = serving_columns(spec)
        self.columns: dict[str, _Column] = {}
        for name in self.known:
            kind = spec.feature_type(name)
            column = next((c for c in spec.columns if c.name == name), None)
            self.columns[name] = _Column(
                name=name,
                kind=kind,
                index=position.get(name),
                lo=column.min if column else None,
                hi=column.max if column else None,
                categories={c: float(i) for i, c in enumerate(column.categories)} if column else {},
            )
        self.derived = [
            (position[d.name], position[d.numerator], position[d.denominator]) for d in spec.derived
        ]
        self.derived_names = set(spec.derived_names)
        self.entity_id = spec.entity_id
        self._plans: dict[tuple[str, ...], _Plan] = {}

    # ---- entry points ----------------------------------------------------------------------
    def from_cells(self, columns: Sequence[str], rows: Sequence[Sequence[str]], first_line: int) -> Encoded:
        """CSV rows (text cells, '' = missing) under `columns` -> the model matrix."""
        plan = self._plan(columns)
        width = len(columns)
        blank = [NAN] * len(self.features)
        values: list[list[float]] = []
        ids: list[Any] = []
        warnings: list[list[str]] = []
        id_at = columns.index(self.entity_id) if self.entity_id in columns else None
        for i, cells in enumerate(rows):
            if len(cells) != width:
                raise RequestError(
                    400,
                    f"CSV line {i + first_line}: {len(cells)} values, expected {width} "
                    f"({'the header' if first_line > 1 else 'the header-less order'} {list(columns)})",
                )
            notes: list[str] = []
            row = plan.row(cells)  # None: some cell is not plain (missing, refused...): cell by cell
            if row is None:
                row = blank.copy()
                for at, j, fast, col in plan.cells:
                    cell = cells[at]
                    value = fast(cell)  # None: not the plain case; the full check decides
                    row[j] = value if value is not None else self._text(cell, col, i, notes)
            values.append(self._derive(row))
            ids.append(cells[id_at] if id_at is not None and cells[id_at] != "" else None)
            warnings.append(notes)
        return Encoded(self._matrix(values), ids, warnings)

    def from_records(self, records: Sequence[Any]) -> Encoded:
        """JSON records (objects of column: value) -> the model matrix."""
        blank = [NAN] * len(self.features)
        values: list[list[float]] = []
        ids: list[Any] = []
        warnings: list[list[str]] = []
        columns = self.columns
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                got = type(record).__name__
                raise RequestError(400, f"record {i}: expected an object of column: value, got {got}")
            if not record:
                raise RequestError(400, f"record {i}: has no columns")
            row = blank.copy()
            notes: list[str] = []
            for name, value in record.items():
                col = columns.get(name)
                if col is None:
                    raise self._unknown_column(name, i)
                if value is None:
                    continue
                if col.index is not None:
                    row[col.index] = self._value(value, col, i, notes)
                elif isinstance(value, (dict, list)):
                    raise RequestError(
                        400, f"record {i}: column {name!r} expects a single value, got {_shown(value)}"
                    )
            values.append(self._derive(row))
            ids.append(record.get(self.entity_id))
            warnings.append(notes)
        return Encoded(self._matrix(values), ids, warnings)

    def check_header(self, header: Sequence[str]) -> bool:
        """True when a first CSV line is a header (every cell a known column name)."""
        known = self.columns
        if header and known.keys().isdisjoint(header):  # the usual case: a data line
            return False
        if all(cell in known for cell in header):
            dupes = sorted({c for c in header if header.count(c) > 1})
            if dupes:
                raise RequestError(400, f"CSV header names columns twice: {dupes}")
            return True
        if any(cell in known for cell in header):
            unknown = [c for c in header if c not in known]
            raise RequestError(400, f"CSV header has unknown columns {unknown}; known columns: {self.known}")
        return False

    # ---- values ----------------------------------------------------------------------------
    def _plan(self, columns: Sequence[str]) -> _Plan:
        """How to read a CSV line under `columns`, built once per header (the header-less order
        is the usual one): per model input (cell position, matrix position, plain-case
        converter, column), and a converter of a whole line of plain cells."""
        key = tuple(columns)
        plan = self._plans.get(key)
        if plan is None:
            cells = [
                (at, col.index, _fast_converter(col), col)
                for at, col in enumerate(self.columns[c] for c in columns)
                if col.index is not None
            ]
            plan = _Plan(cells, _row_converter([(at, col) for at, _, _, col in cells], len(self.features)))
            if len(self._plans) < 64:  # a client cycling through headers cannot grow it forever
                self._plans[key] = plan
        return plan

    def _derive(self, row: list[float]) -> list[float]:
        """The spec's ratios, in order (a ratio may use an earlier one), as the shared
        transform computes them in float64: a zero or missing denominator gives NaN."""
        for j, num, den in self.derived:
            d = row[den]
            row[j] = row[num] / d if d != 0 and d == d else NAN
        return row

    def _matrix(self, values: list[list[float]]) -> np.ndarray:
        if not values:
            return np.empty((0, len(self.features)), dtype=np.float32)
        return np.array(values, dtype=np.float32)  # float64 values rounded once, as astype does

    def _unknown_column(self, name: str, i: int) -> RequestError:
        if name in self.derived_names:
            return RequestError(
                400, f"record {i}: column {name!r} is derived by the server from its inputs; do not send it"
            )
        return RequestError(400, f"record {i}: unknown column {name!r}; known columns: {self.known}")

    def _text(self, cell: str, col: _Column, i: int, notes: list[str]) -> float:
        if cell == "" or cell.isspace():
            return NAN
        kind = col.kind
        if kind == "category":
            code = col.categories.get(cell)
            return code if code is not None else self._unknown(cell, col, i, notes)
        if kind == "boolean":
            return self._boolean(cell, col, i)
        if "_" in cell:  # float() accepts 1_000; preprocessing does not
            raise _wrong(col, i, cell, f"a {kind}")
        try:
            number = float(cell)
        except ValueError:
            raise _wrong(col, i, cell, f"a {kind}") from None
        return self._number(number, cell, col, i)

    def _value(self, value: Any, col: _Column, i: int, notes: list[str]) -> float:
        kind = col.kind
        if isinstance(value, str):
            return self._text(value, col, i, notes)
        if isinstance(value, (dict, list)):
            raise _wrong(col, i, value, f"a single value ({kind})")
        if kind == "boolean":
            if isinstance(value, bool):
                return 1.0 if value else 0.0
            if isinstance(value, (int, float)) and value in (0, 1):
                return float(value)
            raise _wrong(col, i, value, "a boolean (true/false, 1/0, yes/no)")
        if isinstance(value, bool):
            raise _wrong(col, i, value, "a category name" if kind == "category" else f"a {kind}")
        if kind == "category":
            if isinstance(value, (int, float)):
                code = col.categories.get(str(value))
                return code if code is not None else self._unknown(value, col, i, notes)
            raise _wrong(col, i, value, "a category name")
        if not isinstance(value, (int, float)):
            raise _wrong(col, i, value, f"a {kind}")
        try:
            number = float(value)
        except OverflowError:
            raise _wrong(col, i, value, f"a finite {kind}") from None
        return self._number(number, value, col, i)

    @staticmethod
    def _number(number: float, raw: Any, col: _Column, i: int) -> float:
        if not math.isfinite(number):
            raise RequestError(
                400,
                f"record {i}: column {col.name!r} got {_shown(raw)}, not a finite number "
                "(NaN, infinity and overflow like 1e999 are refused; "
                "send an empty value or null for missing)",
            )
        if col.kind == "integer" and not number.is_integer():
            raise _wrong(col, i, raw, "an integer")
        if (col.lo is not None and number < col.lo) or (col.hi is not None and number > col.hi):
            raise RequestError(
                400,
                f"record {i}: column {col.name!r} got {_shown(raw)}, outside the spec's range "
                f"{_bound(col.lo, '-inf')}..{_bound(col.hi, 'inf')}",
            )
        return number

    @staticmethod
    def _boolean(cell: str, col: _Column, i: int) -> float:
        text = cell.strip().lower()
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        raise _wrong(col, i, cell, "a boolean (true/false, 1/0, yes/no)")

    def _unknown(self, value: Any, col: _Column, i: int, notes: list[str]) -> float:
        if self.unknown_category == "missing":
            notes.append(f"{col.name}: unknown category {_shown(value)} scored as missing")
            return NAN
        raise RequestError(
            400,
            f"record {i}: column {col.name!r} got {_shown(value)}, not one of the categories "
            f"{list(col.categories)}",
        )


_Fast = Callable[[str], float | None]
# The usual spellings of a boolean cell; anything else (spaces, capitals, empty) takes the full check.
_PLAIN_BOOLEANS = {**dict.fromkeys(_TRUE, 1.0), **dict.fromkeys(_FALSE, 0.0)}


def _fast_converter(col: _Column) -> _Fast:
    """A converter for the plain case of a CSV cell: the value when it is certainly valid (the
    same float the full check `FeatureEncoder._text` gives), else None for the full check,
    which decides, names the problem or notes a substitution.  Most cells are plain."""
    if col.kind == "category":  # (a blank cell is missing even where a category is blank)
        return {name: code for name, code in col.categories.items() if name.strip()}.get
    if col.kind == "boolean":
        return _PLAIN_BOOLEANS.get
    lo = -math.inf if col.lo is None else col.lo
    hi = math.inf if col.hi is None else col.hi
    integer = col.kind == "integer"

    def number(cell: str) -> float | None:
        if "_" in cell:  # float() accepts 1_000; preprocessing does not
            return None
        try:
            value = float(cell)
        except ValueError:  # empty (missing) or not a number: the full check
            return None
        # finite (x - x is NaN for infinities and NaN), in range, whole for an integer column
        if value - value == 0.0 and lo <= value <= hi and (not integer or value.is_integer()):
            return value
        return None

    return number


_FastRow = Callable[[Sequence[str]], list[float] | None]


class _Plan(NamedTuple):
    cells: list[tuple[int, int, _Fast, _Column]]
    row: _FastRow


def _picker(positions: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """operator.itemgetter that always returns a tuple."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    if positions:
        at = positions[0]
        return lambda seq: (seq[at],)
    return lambda seq: ()


def _row_converter(
    inputs: list[tuple[int, _Column]], width: int
) -> Callable[[Sequence[str]], list[float] | None]:
    """A converter of a whole CSV line whose model cells are all plain (the usual request):
    the matrix row (ratios still NaN) with the values `_fast_converter` would give each cell,
    from a few C-level passes (itemgetter, map) instead of a Python call per cell; None as
    soon as one cell is not plain, for the cell-by-cell path."""
    numbers = [(at, col) for at, col in inputs if col.kind not in ("category", "boolean")]
    categories = [(at, col) for at, col in inputs if col.kind == "category"]
    booleans = [(at, col) for at, col in inputs if col.kind == "boolean"]
    placed = [col.index for _, col in numbers + categories + booleans]
    rest = [j for j in range(width) if j not in placed]  # ratios and inputs not sent: NaN
    source = placed + rest
    order = _picker([source.index(j) for j in range(width)])
    pad = [NAN] * len(rest)
    number_cells = _picker([at for at, _ in numbers])
    # finite bounds: an infinity or NaN fails a comparison, as the full check refuses them
    lows = [max(col.lo, -_LARGEST) if col.lo is not None else -_LARGEST for _, col in numbers]
    highs = [min(col.hi, _LARGEST) if col.hi is not None else _LARGEST for _, col in numbers]
    whole = _picker([k for k, (_, col) in enumerate(numbers) if col.kind == "integer"])
    category_cells = _picker([at for at, _ in categories])
    category_codes = [{n: c for n, c in col.categories.items() if n.strip()} for _, col in categories]
    boolean_cells = _picker([at for at, _ in booleans])
    le, is_whole, plain_boolean = operator.le, float.is_integer, _PLAIN_BOOLEANS.get

    def row(cells: Sequence[str]) -> list[float] | None:
        texts = number_cells(cells)
        if "_" in "".join(texts):  # float() accepts 1_000; preprocessing does not
            return None
        try:
            values: list[Any] = list(map(float, texts))
        except ValueError:  # an empty (missing) cell or not a number
            return None
        if not (all(map(le, lows, values)) and all(map(le, values, highs))):
            return None
        if not all(map(is_whole, whole(values))):
            return None
        values += map(dict.get, category_codes, category_cells(cells))
        values += map(plain_boolean, boolean_cells(cells))
        if None in values:
            return None
        values += pad
        return list(order(values))

    return row


def _wrong(col: _Column, i: int, value: Any, expected: str) -> RequestError:
    return RequestError(400, f"record {i}: column {col.name!r} expects {expected}, got {_shown(value)}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bound(value: float | None, default: str) -> str:
    return default if value is None else f"{value:g}"
