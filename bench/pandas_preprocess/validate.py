"""Schema checks (stop the job) and row checks (quarantine the row), for one table.

Order: columns and emptiness per file, then every column is parsed once; a column that
mostly fails (more than the spec's max_invalid_fraction) is a schema error, the rest are
row-level problems.  Duplicates are looked for among the rows that passed: the first
occurrence of a key is kept, later ones are quarantined as exact duplicates (every column
equal) or as repeated keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pandas_preprocess.labels import Label, parse_label
from pandas_preprocess.parse import Parsed, parse_column, text
from pandas_preprocess.read import TableInput
from pipeline_steps.common.contract import DataError
from pipeline_steps.common.feature_spec import Column

EXAMPLES = 3


@dataclass
class Validated:
    table: str
    rows_in: int
    clean: pd.DataFrame  # typed values of the kept rows, index 0..k-1
    kept: np.ndarray  # their positions in the input
    quarantine: pd.DataFrame  # rejected rows as text + _table/_source_file/_row_number/_reason
    reasons: dict[str, int]  # by the first reason of each rejected row
    duplicates: dict[str, int] = field(default_factory=dict)
    label_values: dict[str, int] = field(default_factory=dict)

    @property
    def rows_out(self) -> int:
        return len(self.kept)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantine)


def _fraction(mask: np.ndarray, of: np.ndarray) -> float:
    total = int(of.sum())
    return float(mask.sum()) / total if total else 0.0


def _examples(raw: pd.Series, mask: np.ndarray) -> list[str]:
    return [str(v) for v in text(raw[mask].head(50)).dropna().unique()[:EXAMPLES]]


def _schema_checks(table: str, col: Column, raw: pd.Series, p: Parsed, max_invalid: float) -> None:
    present = ~p.null
    frac = _fraction(p.unparseable, present)
    if frac > max_invalid:
        raise DataError(
            f"{table} column '{col.name}': {frac:.0%} of values do not parse as {col.type} "
            f"(more than max_invalid_fraction {max_invalid}), e.g. {_examples(raw, p.unparseable)}: "
            "wrong type"
        )
    frac = _fraction(p.unknown, present)
    if frac > max_invalid:
        raise DataError(
            f"{table} column '{col.name}': {frac:.0%} of values are not among the spec's categories "
            f"{list(col.categories)}, e.g. {_examples(raw, p.unknown)}: the spec does not match the data"
        )
    frac = _fraction(p.null, np.ones(len(raw), dtype=bool))
    if not col.nullable and frac > max_invalid:
        raise DataError(
            f"{table} column '{col.name}': {frac:.0%} of values are missing but the spec says it is "
            "not nullable: the spec does not match the data"
        )


class _Reasons:
    def __init__(self, n: int):
        self.code = np.full(n, None, dtype=object)
        self.text = np.full(n, None, dtype=object)
        self.bad = np.zeros(n, dtype=bool)

    def add(self, mask: np.ndarray, code: str, messages: list[str]) -> None:
        self.bad |= mask
        for i, message in zip(np.flatnonzero(mask), messages, strict=True):
            if self.code[i] is None:
                self.code[i] = code
                self.text[i] = message
            else:
                self.text[i] = f"{self.text[i]}; {message}"


def _describe(col: Column, raw: pd.Series, p: Parsed, reasons: _Reasons, role: str) -> None:
    name = col.name
    if p.null.any():
        if role in ("id", "time", "label", "key"):
            code = f"missing_{role}:{name}"
            missing_mask = p.null
        else:
            code = f"missing_required:{name}"
            missing_mask = p.null if not col.nullable else np.zeros(len(raw), dtype=bool)
        if missing_mask.any():
            reasons.add(
                missing_mask,
                code,
                [f"{name}: missing ({role if role != 'column' else 'not nullable'})"]
                * int(missing_mask.sum()),
            )
    for mask, code, fmt in (
        (p.unparseable, "unparseable", "{name}: {value!r} is not a valid {type}"),
        (p.unknown, "unknown_category", "{name}: {value!r} is not one of the categories {cats}"),
        (p.out_of_range, "out_of_range", "{name}: {value} is outside [{lo}, {hi}]"),
    ):
        if mask.any():
            values = text(raw[mask]).fillna("").tolist()
            messages = [
                fmt.format(
                    name=name,
                    value=v,
                    type=col.type,
                    cats=list(col.categories),
                    lo=col.min if col.min is not None else "-inf",
                    hi=col.max if col.max is not None else "inf",
                )
                for v in values
            ]
            reasons.add(mask, f"{code}:{name}", messages)


def _key_codes(
    clean: dict[str, pd.Series], raw: pd.DataFrame, key: list[str], valid: np.ndarray
) -> np.ndarray:
    """One int64 per row identifying its key (only meaningful where `valid`)."""
    combined = np.zeros(len(raw), dtype=np.int64)
    for name in key:
        values = clean[name]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            codes = values.to_numpy().astype("datetime64[D]").astype(np.int64)
            codes = np.where(valid, codes, 0) - (codes[valid].min() if valid.any() else 0)
        elif isinstance(raw[name].dtype, pd.CategoricalDtype):
            codes = raw[name].cat.codes.to_numpy().astype(np.int64)
        else:
            codes = pd.factorize(values)[0].astype(np.int64)
        width = int(codes.max()) + 2 if len(codes) else 1
        combined = combined * width + (codes + 1)
    return combined


def _same_rows(raw: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    same = np.ones(len(a), dtype=bool)
    for name in raw.columns:
        x = text(raw[name].iloc[a]).fillna("\0").to_numpy(dtype=object)
        y = text(raw[name].iloc[b]).fillna("\0").to_numpy(dtype=object)
        same &= x == y
    return same


def validate(
    inp: TableInput,
    columns: list[tuple[Column, str]],
    key: list[str],
    max_invalid: float,
    label: Label | None = None,
) -> Validated:
    """columns: (Column, role) with role id/time/key/label/column, in output order."""
    reasons = _Reasons(len(inp.frame))
    clean = _parse_columns(inp, columns, max_invalid, label, reasons)
    duplicates = _quarantine_duplicates(inp, clean, key, reasons)
    valid = ~reasons.bad
    kept = np.flatnonzero(valid)
    bad = np.flatnonzero(~valid)
    out = pd.DataFrame({name: values.iloc[kept].reset_index(drop=True) for name, values in clean.items()})
    counts = pd.Series(reasons.code[bad]).value_counts()
    result = Validated(
        inp.name,
        len(inp.frame),
        out,
        kept,
        _quarantine(inp, bad, reasons),
        {str(k): int(v) for k, v in counts.items()},
        duplicates,
    )
    if label is not None:
        result.label_values = {str(k): int(v) for k, v in out[label.name].value_counts().items()}
    check_accounting(result)
    return result


def _parse_columns(
    inp: TableInput,
    columns: list[tuple[Column, str]],
    max_invalid: float,
    label: Label | None,
    reasons: _Reasons,
) -> dict[str, pd.Series]:
    """Every column parsed once (a mostly unparseable one stops the job); each bad value's
    row gets its reason.  Returns the typed values by column."""
    raw, n = inp.frame, len(inp.frame)
    clean: dict[str, pd.Series] = {}
    parsed: list[tuple[Column, str, Parsed]] = []
    for col, role in columns:
        if role == "label" and label is not None:
            values, null, unexpected = parse_label(raw[col.name], label, inp.name, max_invalid)
            none = np.zeros(n, dtype=bool)
            p = Parsed(values, null, unexpected, none, none.copy())
        else:
            p = parse_column(raw[col.name], col)
            _schema_checks(inp.name, col, raw[col.name], p, max_invalid)
        parsed.append((col, role, p))
        clean[col.name] = p.values
    for col, role, p in parsed:
        _describe(col, raw[col.name], p, reasons, role)
    return clean


def _quarantine_duplicates(
    inp: TableInput, clean: dict[str, pd.Series], key: list[str], reasons: _Reasons
) -> dict[str, int]:
    """Among the valid rows, keeps the first occurrence of each key; later ones get their
    reason (an exact duplicate, or a repeated key).  Returns the counts of each."""
    raw, n = inp.frame, len(inp.frame)
    valid = ~reasons.bad
    codes = _key_codes(clean, raw, key, valid)
    positions = np.flatnonzero(valid)
    keys = pd.Series(codes[positions])
    involved = keys.duplicated(keep=False).to_numpy()
    if not involved.any():
        return {"exact": 0, "key": 0}
    sub_pos = positions[involved]
    sub_keys = keys[involved].reset_index(drop=True)
    first = pd.Series(sub_pos).groupby(sub_keys.to_numpy()).transform("min").to_numpy()
    later = sub_pos != first
    dup_pos, first_pos = sub_pos[later], first[later]
    exact = _same_rows(raw, dup_pos, first_pos)
    key_text = [
        " ".join(str(v) for v in row)
        for row in zip(*(text(raw[k].iloc[dup_pos]).fillna("").tolist() for k in key), strict=True)
    ]
    where = [f"row {inp.row_number[f]} of {inp.files[inp.source[f]]}" for f in first_pos]
    msgs = [
        f"exact duplicate of {w}" if e else f"duplicate {'+'.join(key)} {k!r} (first at {w})"
        for e, k, w in zip(exact, key_text, where, strict=True)
    ]
    mask_exact = np.zeros(n, dtype=bool)
    mask_key = np.zeros(n, dtype=bool)
    mask_exact[dup_pos[exact]] = True
    mask_key[dup_pos[~exact]] = True
    reasons.add(mask_exact, "exact_duplicate", [m for m, e in zip(msgs, exact, strict=True) if e])
    key_msgs = [m for m, e in zip(msgs, exact, strict=True) if not e]
    reasons.add(mask_key, f"duplicate_key:{'+'.join(key)}", key_msgs)
    return {"exact": int(exact.sum()), "key": int((~exact).sum())}


def _quarantine(inp: TableInput, bad: np.ndarray, reasons: _Reasons) -> pd.DataFrame:
    """The rejected rows as their original text, with where they came from and why."""
    raw = inp.frame
    quarantine = pd.DataFrame(
        {name: text(raw[name].iloc[bad]).reset_index(drop=True) for name in raw.columns}
    )
    quarantine.insert(0, "_table", pd.Series([inp.name] * len(bad), dtype="string"))
    quarantine["_source_file"] = pd.Series(
        np.asarray(inp.files, dtype=object)[inp.source[bad]], dtype="string"
    )
    quarantine["_row_number"] = inp.row_number[bad]
    quarantine["_reason"] = pd.Series(reasons.text[bad], dtype="string")
    return quarantine


def check_accounting(v: Validated) -> None:
    """The invariant every run reports: rows in = rows out + rows quarantined."""
    if v.rows_in != v.rows_out + v.rows_quarantined or v.rows_quarantined != sum(v.reasons.values()):
        raise RuntimeError(
            f"{v.table}: row accounting broke: {v.rows_in} in, {v.rows_out} out, "
            f"{v.rows_quarantined} quarantined, reasons {v.reasons}"
        )
