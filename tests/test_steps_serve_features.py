"""The serving fast path equals the shared transform (training and evaluation's) on every
spec feature kind: categories, integers, numbers, booleans, history aggregates, derived ratios,
with missing values, numbers and booleans as text, zero denominators and (under the `missing`
policy) unknown categories.  And the input policy refuses what preprocessing would quarantine."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline_steps.common import transform
from pipeline_steps.common.feature_spec import FeatureSpec, load_spec, parse_spec
from pipeline_steps.serve import payload
from pipeline_steps.serve.errors import RequestError
from pipeline_steps.serve.features import FeatureEncoder, csv_columns

SPECS = Path(__file__).resolve().parents[1] / "workflow" / "specs"
MERCHANT = load_spec(SPECS / "merchant_credit.yaml")
ISLR = load_spec(SPECS / "islr_default.yaml")
# A spec with kinds the shipped ones lack: numeric category names and a ratio of a ratio.
ODD = parse_spec(
    """
name: odd
entity: {id: row_id, time: as_of}
label: {name: y}
columns:
  - {name: grade, type: category, categories: ["1", "2", "3"]}
  - {name: flag, type: boolean}
  - {name: a, type: number}
  - {name: b, type: integer}
derived:
  - {name: a_per_b, numerator: a, denominator: b}
  - {name: ratio_of_ratio, numerator: a_per_b, denominator: a}
"""
)


def random_record(spec: FeatureSpec, rng: random.Random, *, unknown: bool) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name in csv_columns(spec):
        kind = spec.feature_type(name)
        column = next((c for c in spec.columns if c.name == name), None)
        lo = column.min if column and column.min is not None else 0
        hi = column.max if column and column.max is not None else 1000
        roll = rng.random()
        if roll < 0.1:
            record[name] = None
        elif roll < 0.15:
            continue  # an absent column is missing too
        elif kind == "category":
            cats = list(spec.column(name).categories)
            value: Any = rng.choice(cats + (["never-seen"] if unknown else []))
            record[name] = int(value) if value.isdigit() and rng.random() < 0.5 else value
        elif kind == "boolean":
            record[name] = rng.choice([True, False, 0, 1, "yes", "No", " true ", "F"])
        elif kind in ("integer", "number"):
            number = rng.choice([lo, hi, 0 if lo <= 0 <= hi else lo, rng.uniform(lo, min(hi, lo + 1000))])
            if kind == "integer":
                number = int(number)
            record[name] = str(number) if rng.random() < 0.3 else number
        else:
            record[name] = f"x-{rng.randint(0, 9)}"
    return record


def shared(records: list[dict[str, Any]], spec: FeatureSpec) -> np.ndarray:
    return transform.model_matrix(transform.records_to_frame(records, spec), spec)


@pytest.mark.parametrize("spec", [MERCHANT, ISLR, ODD], ids=lambda s: s.name)
def test_fast_path_equals_the_shared_transform(spec: FeatureSpec):
    rng = random.Random(3)
    records = [random_record(spec, rng, unknown=True) for _ in range(400)]
    encoder = FeatureEncoder(spec, unknown_category="missing")
    fast = encoder.from_records(records).matrix
    np.testing.assert_array_equal(fast, shared(records, spec))  # NaN equals NaN here
    assert np.isnan(fast).any() and fast.dtype == np.float32


@pytest.mark.parametrize("spec", [MERCHANT, ISLR, ODD], ids=lambda s: s.name)
def test_csv_path_equals_the_shared_transform(spec: FeatureSpec):
    rng = random.Random(4)
    records = [random_record(spec, rng, unknown=False) for _ in range(200)]
    columns = csv_columns(spec)

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace(",", "")

    body = "".join(",".join(cell(r.get(c)) for c in columns) + "\n" for r in records).encode()
    fast = payload.decode(body, "text/csv", FeatureEncoder(spec)).matrix
    np.testing.assert_array_equal(fast, shared(records, spec))


@pytest.mark.parametrize(
    "record, words",
    [
        ({"monthly_revenue": 1e999}, ["'monthly_revenue'", "not a finite number"]),
        ({"monthly_revenue": "NaN"}, ["'monthly_revenue'", "not a finite number"]),
        ({"monthly_revenue": "-inf"}, ["not a finite number"]),
        ({"monthly_revenue": 10**400}, ["'monthly_revenue'", "finite"]),
        ({"monthly_revenue": "1_000"}, ["'monthly_revenue'", "a number"]),
        ({"region": "castle"}, ["'region'", "'castle'", "not one of the categories"]),
        ({"industry": "Retail"}, ["'industry'", "not one of the categories"]),
        ({"owner_credit_score": 900}, ["'owner_credit_score'", "outside the spec's range 300..850"]),
        ({"tenure_months": -1}, ["'tenure_months'", "outside"]),
        ({"tenure_months": 1.5}, ["'tenure_months'", "an integer"]),
        ({"has_prior_loan": 2}, ["'has_prior_loan'", "boolean"]),
        ({"industry": True}, ["'industry'", "category"]),
        ({"monthly_revenue": {"amount": 1}}, ["'monthly_revenue'", "single value"]),
        ({"merchant_id": [1]}, ["'merchant_id'", "single value"]),
    ],
)
def test_bad_values_are_refused_by_name(record: dict[str, Any], words: list[str]):
    with pytest.raises(RequestError) as err:
        FeatureEncoder(MERCHANT).from_records([{"industry": "retail"}, record])
    assert err.value.status == 400 and err.value.message.startswith("record 1:")
    for word in words:
        assert word in err.value.message


def test_unknown_category_as_missing_is_said_in_warnings():
    encoded = FeatureEncoder(MERCHANT, unknown_category="missing").from_records([{"region": "castle"}])
    assert np.isnan(encoded.matrix[0, MERCHANT.model_features.index("region")])
    assert encoded.warnings == [["region: unknown category 'castle' scored as missing"]]


# Cells the plain-case converters must either take exactly as the full check does, or leave to it.
TRICKY_CELLS = [
    *["", " ", "\t", "0", "1", "-0", "5.0", "5.5", " 12 ", "1e3", "1e999", "-1e999", "nan", "NaN", "inf"],
    *["-inf", "1_000", "0x10", "12a", "300", "299.999", "850", "850.0001", "10000", "-1", "1e308"],
    *["true", "TRUE", " true", "t", "T", "yes", "Y", "n", "no", "false", "f", "0.0", "2"],
    *["retail", "Retail", " retail", "castle", "north", "1", "3", "4"],
]


@pytest.mark.parametrize("spec", [MERCHANT, ISLR, ODD], ids=lambda s: s.name)
@pytest.mark.parametrize("policy", ["reject", "missing"])
def test_plain_case_converters_agree_with_the_full_check(spec: FeatureSpec, policy: str):
    """Every cell the per-column fast converter takes gets the full check's exact value; every
    cell it leaves (None) is decided by the full check, which refuses or substitutes."""
    encoder = FeatureEncoder(spec, unknown_category=policy)
    plan = encoder._plan(encoder.csv_columns)
    taken = 0
    for _, _, fast, col in plan.cells:
        for cell in TRICKY_CELLS:
            value = fast(cell)
            if value is None:
                continue
            taken += 1
            notes: list[str] = []
            assert encoder._text(cell, col, 0, notes) == value and not notes, (col.name, cell)
    assert taken > 20  # the plain cases are taken


@pytest.mark.parametrize("spec", [MERCHANT, ODD], ids=lambda s: s.name)
def test_csv_single_rows_and_headers_equal_the_shared_transform(spec: FeatureSpec):
    """One row per request (the serving case), header-less and under a shuffled partial header,
    with missing cells, text booleans and unknown categories scored as missing."""
    rng = random.Random(5)
    encoder = FeatureEncoder(spec, unknown_category="missing")
    columns = csv_columns(spec)
    for n in range(30):
        record = random_record(spec, rng, unknown=True)
        cells = {c: "" if record.get(c) is None else str(record[c]).replace(",", "") for c in columns}
        if n % 2:
            header = rng.sample(columns, rng.randint(1, len(columns)))
            body = (",".join(header) + "\n" + ",".join(cells[c] for c in header) + "\n").encode()
            record = {c: record.get(c) for c in header}
        else:
            body = (",".join(cells[c] for c in columns) + "\n").encode()
        encoded = payload.decode(body, "text/csv", encoder)
        assert encoded.matrix.shape == (1, len(spec.model_features))
        np.testing.assert_array_equal(encoded.matrix, shared([record], spec), err_msg=body.decode())
        unknown = [c for c, value in record.items() if value == "never-seen"]
        assert len(encoded.warnings[0]) == len(unknown)  # each substitution is said


@pytest.mark.parametrize("spec", [MERCHANT, ISLR, ODD], ids=lambda s: s.name)
def test_whole_line_converter_agrees_with_the_cell_by_cell_path(spec: FeatureSpec):
    """A line of plain cells converts in one pass to the very row the cell-by-cell path gives;
    a line with any other cell is left to that path (None)."""
    rng = random.Random(6)
    encoder = FeatureEncoder(spec, unknown_category="missing")
    columns = csv_columns(spec)
    plan = encoder._plan(columns)
    converted = 0
    for n in range(600):
        drawn = [random_record(spec, rng, unknown=False) for _ in range(6)]  # few missing cells
        values = [next((r[c] for r in drawn if r.get(c) is not None), None) for c in columns]
        cells = ["" if value is None else str(value) for value in values]
        if n % 3 == 0:  # one tricky cell somewhere
            cells[rng.randrange(len(cells))] = rng.choice(TRICKY_CELLS)
        row = plan.row(cells)
        if row is None:
            continue
        converted += 1
        slow = [float("nan")] * len(encoder.features)
        notes: list[str] = []
        for at, j, _, col in plan.cells:
            slow[j] = encoder._text(cells[at], col, 0, notes)
        assert not notes
        np.testing.assert_array_equal(np.array(row), np.array(slow), err_msg=str(cells))
    assert converted > 100
