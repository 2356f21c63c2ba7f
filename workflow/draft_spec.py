"""python -m workflow.draft_spec DATA [--label COL] [--positive VALUE] [--id COL] [--time COL] > spec.yaml

Drafts a feature spec from a CSV or Parquet file so that a new data set starts from a spec
that runs: each column's type, categories, nullability and observed range, a guessed label
(and its positive value), id and time column.  Every guess is marked with a `# guessed`
comment saying why; read those lines, then run the workflow with the spec:

    python -m workflow.demo --data DATA --spec spec.yaml

The draft is loaded with the project's spec loader before it is printed, so what this prints
is always a valid spec.  Bad input (no such file, a column name the spec cannot hold, no
two-valued label column) ends the command with one message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline_steps.common.contract import ConfigError
from pipeline_steps.common.feature_spec import GENERATED_ID, GENERATED_TIME, SpecError, parse_spec
from pipeline_steps.common.transform import _FALSE, _TRUE
from pipeline_steps.preprocess.files import NULL_TOKENS
from workflow.cli import add_debug_flag, run_cli

MAX_CATEGORIES = 50  # more distinct text values than this: free text or an identifier
DATE_SHARE = 0.95  # a text column is a date when this share of its values parse as dates
_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_LABEL_HINTS = re.compile(
    r"(^|_)(label|target|default|defaulted|status|class|outcome|churn|bad|fraud|y)$", re.IGNORECASE
)
_ID_HINTS = re.compile(r"(^|_)(id|key|rownames|row|index|number|no)$", re.IGNORECASE)
_TIME_HINTS = re.compile(r"(date|_at$|^at$|timestamp|datetime|day$)", re.IGNORECASE)


class DraftError(ConfigError):
    """The data cannot be drafted into a spec; the message names the file and the column."""


@dataclass
class Profile:
    name: str
    type: str  # a spec column type
    nulls: int
    distinct: int
    rows: int
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] = field(default_factory=list)  # most frequent first
    counts: dict[str, int] = field(default_factory=dict)  # value -> rows, for two-valued columns


# ---- reading --------------------------------------------------------------------------------
def read_data(path: Path, sample_rows: int | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise DraftError(f"{path}: no such file (expected a .csv, .csv.gz or .parquet file)")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            table = pq.read_table(path)
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            table = pacsv.read_csv(
                path, convert_options=pacsv.ConvertOptions(null_values=NULL_TOKENS, strings_can_be_null=True)
            )
        else:
            raise DraftError(f"{path}: unknown file type; expected .csv, .csv.gz or .parquet")
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as err:
        raise DraftError(
            f"{path}: cannot read it as {'Parquet' if 'parq' in name else 'CSV'}: {err}"
        ) from None
    if table.num_rows == 0:
        raise DraftError(f"{path}: has a header but no rows")
    if sample_rows:
        table = table.slice(0, sample_rows)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


# ---- profiling ------------------------------------------------------------------------------
def _is_boolean_text(values: pd.Series) -> bool:
    lowered = set(values.astype(str).str.strip().str.lower())
    return (
        len(lowered) == 2 and lowered <= (_TRUE | _FALSE) and bool(lowered & _TRUE) and bool(lowered & _FALSE)
    )


def _parses_as_dates(values: pd.Series) -> bool:
    sample = values.astype(str).head(2000)
    if not sample.str.contains(r"\d{4}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2}", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= DATE_SHARE)


def profile(frame: pd.DataFrame, column: str) -> Profile:
    raw = frame[column]
    present = raw.dropna()
    rows = len(raw)
    kind = raw.dtype.pyarrow_dtype if isinstance(raw.dtype, pd.ArrowDtype) else None
    p = Profile(column, "string", int(raw.isna().sum()), int(present.nunique()), rows)
    if p.distinct <= 2:
        p.counts = {str(k): int(v) for k, v in present.astype(str).value_counts().items()}
    if kind is not None and pa.types.is_boolean(kind):
        p.type = "boolean"
    elif kind is not None and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        numbers = present.astype("float64")
        integral = bool((numbers == numbers.round()).all())
        p.type = "integer" if pa.types.is_integer(kind) or integral else "number"
        if len(numbers):
            p.minimum, p.maximum = float(numbers.min()), float(numbers.max())
    elif kind is not None and (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        p.type = "date"
    elif len(present) and _is_boolean_text(present):
        p.type = "boolean"
    elif len(present) and _parses_as_dates(present):
        p.type = "date"
    elif 0 < p.distinct <= MAX_CATEGORIES and p.distinct < 0.5 * max(len(present), 1):
        p.type = "category"
        p.categories = [str(v) for v in present.astype(str).value_counts().index]
    return p


# ---- guessing -------------------------------------------------------------------------------
def guess_label(profiles: list[Profile], given: str | None) -> tuple[Profile, str]:
    by_name = {p.name: p for p in profiles}
    if given:
        if given not in by_name:
            raise DraftError(f"--label {given!r}: not a column; the file has {list(by_name)}")
        if by_name[given].distinct != 2:
            raise DraftError(
                f"--label {given!r}: has {by_name[given].distinct} distinct values; a label needs exactly two"
            )
        return by_name[given], "given with --label"
    two_valued = [p for p in profiles if p.distinct == 2]
    named = [p for p in two_valued if _LABEL_HINTS.search(p.name)]
    if named:
        return named[0], f"guessed: two values and a label-like name ({len(two_valued)} two-valued columns)"
    if two_valued:
        return two_valued[-1], f"guessed: the last of {len(two_valued)} two-valued columns; check it"
    raise DraftError(
        "no column has exactly two values, so there is no label to predict; "
        "give --label COLUMN for a two-valued column"
    )


def guess_positive(label: Profile, given: str | None) -> tuple[str, str]:
    if given is not None:
        if given not in label.counts:
            raise DraftError(f"--positive {given!r}: label '{label.name}' has values {sorted(label.counts)}")
        return given, "given with --positive"
    rarer = min(label.counts, key=lambda v: (label.counts[v], v))
    shares = ", ".join(f"{v}: {n}" for v, n in label.counts.items())
    return rarer, f"guessed: the rarer value ({shares}); the positive is the event to predict (e.g. default)"


def guess_id(profiles: list[Profile], given: str | None, taken: set[str]) -> tuple[Profile | None, str]:
    if given:
        found = [p for p in profiles if p.name == given]
        if not found:
            raise DraftError(f"--id {given!r}: not a column; the file has {[p.name for p in profiles]}")
        if found[0].nulls or found[0].distinct != found[0].rows:
            raise DraftError(f"--id {given!r}: values are not unique and present in every row")
        return found[0], "given with --id"
    for p in profiles:
        unique = p.nulls == 0 and p.distinct == p.rows
        if p.name not in taken and unique and p.type in ("integer", "string") and _ID_HINTS.search(p.name):
            return p, "guessed: unique in every row and an id-like name"
    return None, f"no id column found: preprocessing adds {GENERATED_ID} (<file name>:<row number>)"


def guess_time(profiles: list[Profile], given: str | None, taken: set[str]) -> tuple[Profile | None, str]:
    if given:
        found = [p for p in profiles if p.name == given]
        if not found or found[0].type != "date":
            raise DraftError(f"--time {given!r}: not a date column of the file")
        return found[0], "given with --time"
    dates = [p for p in profiles if p.type == "date" and p.name not in taken and p.nulls == 0]
    dates.sort(key=lambda p: not _TIME_HINTS.search(p.name))
    if dates:
        return dates[0], "guessed: the first complete date column; the split is by this time"
    return None, (
        "no date column found: the split is a seeded random split stratified by the label, and the "
        f"Feature Store event time ({GENERATED_TIME}) is the run's as-of time"
    )


# ---- writing --------------------------------------------------------------------------------
def _value(v: Any) -> str:
    return json.dumps(v)


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def _column_line(p: Profile) -> str:
    parts = [f"name: {p.name}", f"type: {p.type}"]
    if p.type == "category":
        parts.append(f"categories: [{', '.join(_value(c) for c in p.categories)}]")
    if p.nulls:
        parts.append("nullable: true")
    if p.type in ("integer", "number") and p.minimum is not None and p.minimum >= 0:
        parts.append("min: 0")
    notes = []
    if p.nulls:
        notes.append(f"{p.nulls} of {p.rows} missing")
    if p.minimum is not None:
        notes.append(f"observed {_number(p.minimum)}..{_number(p.maximum or 0)}")
    if p.type == "string":
        notes.append(f"{p.distinct} distinct values: text, not a model input")
    line = "  - {" + ", ".join(parts) + "}"
    return line + (f"  # {'; '.join(notes)}" if notes else "")


def slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return re.sub(r"-+", "-", words)[:41].strip("-") or "my-data"


def draft(
    path: Path,
    *,
    name: str | None = None,
    label: str | None = None,
    positive: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    sample_rows: int | None = None,
) -> str:
    frame = read_data(path, sample_rows)
    bad = [c for c in frame.columns if not _VALID_NAME.match(str(c))]
    if bad:
        raise DraftError(
            f"{path.name}: column name(s) {bad} cannot be used in a spec (letters, digits and _, "
            "not starting with a digit, at most 64): rename them in the file"
        )
    profiles = [profile(frame, str(c)) for c in frame.columns]
    label_p, label_why = guess_label(profiles, label)
    positive_value, positive_why = guess_positive(label_p, positive)
    id_p, id_why = guess_id(profiles, id_column, {label_p.name})
    time_p, time_why = guess_time(profiles, time_column, {label_p.name} | ({id_p.name} if id_p else set()))
    roles = {label_p.name} | {p.name for p in (id_p, time_p) if p is not None}
    columns = [p for p in profiles if p.name not in roles]
    features = [p.name for p in columns if p.type != "date"]
    if not features:
        raise DraftError(f"{path.name}: no feature columns besides the label, id and time")
    spec_name = slug(name or path.name.split(".")[0])
    positive_yaml = _value(int(positive_value)) if label_p.type == "integer" else _value(positive_value)

    description = f"Probability that {label_p.name} is {positive_value} (drafted from {path.name})."
    lines = [
        f"# Feature spec drafted from {path.name} ({len(frame):,} rows, {len(profiles)} columns)",
        "# by `python -m workflow.draft_spec`. Read every `# guessed` line before you run it.",
        f"name: {spec_name}",
        f"description: {_value(description)}",
        "",
        "entity:",
        f"  id: {id_p.name}  # {id_why}" if id_p else f"  # id: <column>  # {id_why}",
        f"  time: {time_p.name}  # {time_why}" if time_p else f"  # time: <column>  # {time_why}",
        "",
        "label:",
        f"  name: {label_p.name}  # {label_why}",
        f"  positive: [{positive_yaml}]  # {positive_why}",
        "",
        "columns:",
        *[_column_line(p) for p in columns],
        "",
        "feature_groups:  # Feature Store groups; record id and event time are added to each",
        f"  - name: {slug(spec_name)}",
        f"    description: {_value(f'Every feature of {path.name}.')}",
        f"    features: [{', '.join(features)}]",
        "",
        "split:",
        "  validation_fraction: 0.15",
        "  test_fraction: 0.15",
    ]
    if time_p is None:
        lines.append("  seed: 7  # the random split's seed: the same seed, the same split")
    lines += ["", "validation:", "  max_invalid_fraction: 0.2", ""]
    text = "\n".join(lines)
    try:
        parse_spec(text, source="draft")
    except SpecError as err:  # a drafting bug, not the user's: say so plainly
        raise DraftError(f"the drafted spec does not load ({err}); please report this with the file") from err
    return text


PROG = "python -m workflow.draft_spec"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="a CSV (.csv, .csv.gz) or Parquet file")
    parser.add_argument("--name", help="the spec's name (default: from the file name)")
    parser.add_argument("--label", help="the label column (default: guessed)")
    parser.add_argument("--positive", help="the label's positive value (default: the rarer one)")
    parser.add_argument("--id", dest="id_column", help="the id column (default: guessed, or none)")
    parser.add_argument("--time", dest="time_column", help="the time column (default: guessed, or none)")
    parser.add_argument("--sample-rows", type=int, default=None, help="profile only the first N rows")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    text = draft(
        args.data,
        name=args.name,
        label=args.label,
        positive=args.positive,
        id_column=args.id_column,
        time_column=args.time_column,
        sample_rows=args.sample_rows,
    )
    sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
