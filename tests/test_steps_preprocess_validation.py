"""Preprocess: schema errors stop the job; bad rows are quarantined with a readable reason."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_steps.common.contract import DataError
from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.preprocess.__main__ import main
from pipeline_steps.preprocess.run import Config, run
from workflow.datasets import merchant_credit as mc

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "workflow" / "specs" / "merchant_credit.yaml"
SPEC = load_spec(SPEC_PATH)


@pytest.fixture(scope="module")
def clean():
    entities, history = mc.generate(600, 21)
    return entities.astype("string").astype(object).where(entities.notna(), None), history


def _write(tmp: Path, entities: pd.DataFrame, history: pd.DataFrame, fmt: str = "csv") -> Path:
    mc.write(str(tmp / "in"), entities, history, fmt=fmt)
    return tmp / "in"


def _run(tmp: Path, **kw):
    return run(
        Config(
            spec=kw.pop("spec", SPEC_PATH),
            entities=tmp / "in" / "entities",
            history=tmp / "in" / "history",
            output=tmp / "out",
            **kw,
        )
    )


def _cli(tmp: Path, monkeypatch, *extra: str) -> tuple[int, str]:
    monkeypatch.setenv("OPT_ML_ROOT", str(tmp / "ml"))
    code = main(
        [
            "--feature-spec",
            str(SPEC_PATH),
            "--entities",
            str(tmp / "in" / "entities"),
            "--history",
            str(tmp / "in" / "history"),
            "--output",
            str(tmp / "out"),
            *extra,
        ]
    )
    message = tmp / "ml" / "output" / "message"
    return code, message.read_text() if message.exists() else ""


# ---- row-level problems ------------------------------------------------------------------
BAD_ROWS = {  # row -> (column, bad value, expected reason code, words in the reason)
    3: ("monthly_revenue", "12,5k", "unparseable:monthly_revenue", ["monthly_revenue", "12,5k", "number"]),
    5: ("tenure_months", "-4", "out_of_range:tenure_months", ["tenure_months", "-4", "outside"]),
    8: ("owner_credit_score", "900", "out_of_range:owner_credit_score", ["owner_credit_score", "900"]),
    13: ("industry", "crypto", "unknown_category:industry", ["industry", "crypto", "categories"]),
    21: ("region", None, "missing_required:region", ["region", "missing"]),
    34: ("defaulted", None, "missing_label:defaulted", ["defaulted", "missing"]),
    55: (
        "application_date",
        "2023-02-30",
        "unparseable:application_date",
        ["application_date", "2023-02-30"],
    ),
    89: ("application_date", None, "missing_time:application_date", ["application_date", "missing"]),
    144: ("application_id", None, "missing_id:application_id", ["application_id", "missing"]),
    233: ("employees", "2.5", "unparseable:employees", ["employees", "2.5", "integer"]),
    377: ("has_prior_loan", "maybe", "unparseable:has_prior_loan", ["has_prior_loan", "maybe", "boolean"]),
}


def test_each_bad_row_is_quarantined_with_its_reason_and_rows_add_up(tmp_path, clean):
    entities, history = clean
    e = entities.copy()
    for row, (column, value, _, _) in BAD_ROWS.items():
        e.loc[row, column] = value
    e.loc[400, "employees"] = None  # nullable: stays
    exact = e.iloc[[10, 11]]
    again = e.iloc[[12]].copy()
    again["requested_amount"] = "123.0"
    e = pd.concat([e, exact, again], ignore_index=True)
    _write(tmp_path, e, history)
    report = _run(tmp_path)
    q = pd.read_parquet(tmp_path / "out" / "quarantine" / "part-algo-1.parquet")
    qe = q[q["_table"] == "entities"]
    assert set(SPEC.column_names) <= set(q.columns) and {"_source_file", "_row_number", "_reason"} <= set(
        q.columns
    )
    for row, (column, value, code, words) in BAD_ROWS.items():
        hit = qe[qe["_row_number"] == row + 1]  # 1-based data rows
        assert len(hit) == 1, (row, column)
        reason = hit["_reason"].iloc[0]
        assert all(w in reason for w in words), reason
        if value is not None:
            assert hit[column].iloc[0] == value  # the original text is kept
        assert report["entities"]["quarantined_by_reason"][code] >= 1
    exact_rows = qe[qe["_reason"].str.startswith("exact duplicate of row 11 ")]
    assert len(exact_rows) == 1 and exact_rows["_row_number"].iloc[0] == 601
    dup = qe[qe["_row_number"] == 603]["_reason"].iloc[0]
    assert "duplicate application_id" in dup and e.loc[12, "application_id"] in dup and "row 13" in dup
    acc = report["entities"]
    assert acc["rows_in"] == 603 == acc["rows_out"] + acc["rows_quarantined"]
    assert acc["rows_quarantined"] == len(BAD_ROWS) + 3 == len(qe)
    assert acc["duplicates"] == {"exact": 2, "key": 1}
    kept = pd.concat([pd.read_parquet(tmp_path / "out" / s) for s in ("train", "validation", "test")])
    assert len(kept) == acc["rows_out"] and kept[SPEC.entity_id].is_unique
    assert kept["employees"].isna().sum() >= 1  # a null in a nullable column is not a reason to reject


def test_history_rows_are_validated_and_counted_separately(tmp_path, clean):
    entities, history = clean
    h = history.copy()
    h.loc[7, "card_volume"] = -5.0
    h.loc[9, "days_late"] = 999
    h = pd.concat([h, h.iloc[[20]]], ignore_index=True)
    _write(tmp_path, entities, h, fmt="parquet")
    report = _run(tmp_path)
    acc = report["history"]
    assert acc["rows_in"] == len(h) == acc["rows_out"] + acc["rows_quarantined"]
    assert acc["quarantined_by_reason"] == {
        "exact_duplicate": 1,
        "out_of_range:card_volume": 1,
        "out_of_range:days_late": 1,
    }
    assert report["entities"]["rows_quarantined"] == 0
    q = pd.read_parquet(tmp_path / "out" / "quarantine")
    assert sorted(q["_row_number"]) == [8, 10, len(h)]
    assert (q["_table"] == "history").all()


def test_null_tokens_in_keys_are_missing_keys_and_short_keys_are_kept(tmp_path, clean):
    # In Parquet a key's text is kept as written: ' N/A ' and 'none' are null tokens (the key is
    # missing), a short key like 'M1' is a key.
    entities, history = clean
    e = entities.copy()
    e.loc[2, "application_id"] = "NULL"
    _write(tmp_path, e, history, fmt="parquet")
    (path,) = (tmp_path / "in" / "history").glob("*.parquet")
    h = pd.read_parquet(path).astype({"merchant_id": "string"})
    h.loc[3, "merchant_id"], h.loc[4, "merchant_id"], h.loc[5, "merchant_id"] = " N/A ", "none", "M1"
    h.to_parquet(path, index=False)
    report = _run(tmp_path)
    assert report["entities"]["quarantined_by_reason"] == {"missing_id:application_id": 1}
    assert report["history"]["quarantined_by_reason"] == {"missing_key:merchant_id": 2}
    q = pd.read_parquet(tmp_path / "out" / "quarantine")
    assert sorted(q.loc[q["_table"] == "history", "merchant_id"]) == [" N/A ", "none"]


# ---- schema errors: exit 2, a message naming the column, no split output -----------------
def _assert_failed(tmp_path, monkeypatch, *words, extra=()):
    code, message = _cli(tmp_path, monkeypatch, *extra)
    assert code == 2  # input the step cannot use
    for w in words:
        assert w in message, message
    for split in ("train", "validation", "test", "quarantine", "baseline"):
        assert not (tmp_path / "out" / split).exists()


def test_missing_column(tmp_path, clean, monkeypatch):
    entities, history = clean
    _write(tmp_path, entities.drop(columns=["region"]), history)
    _assert_failed(tmp_path, monkeypatch, "missing column", "region")


def test_extra_column(tmp_path, clean, monkeypatch):
    entities, history = clean
    _write(tmp_path, entities.assign(favourite_colour="blue"), history)
    _assert_failed(tmp_path, monkeypatch, "extra column", "favourite_colour")


def test_wrong_type(tmp_path, clean, monkeypatch):
    entities, history = clean
    e = entities.copy()
    e["requested_amount"] = ["lots"] * len(e)
    _write(tmp_path, e, history)
    _assert_failed(tmp_path, monkeypatch, "requested_amount", "do not parse as number", "lots")


def test_wrong_type_of_a_mostly_missing_nullable_column(tmp_path, clean, monkeypatch):
    # A nullable column's bad share is over the values present: with 75 % missing, the 20 % of rows
    # that do not parse are 80 % of its values (the missing values are counted for it).
    entities, history = clean
    e = entities.copy()
    kind = np.arange(len(e)) % 20
    e["employees"] = np.where(kind < 15, None, np.where(kind < 19, "lots", e["employees"]))
    _write(tmp_path, e, history)
    _assert_failed(tmp_path, monkeypatch, "employees", "80%", "do not parse as integer", "lots")


def test_missing_values_of_a_nullable_column_are_kept_and_its_few_bad_ones_quarantined(tmp_path, clean):
    entities, history = clean
    e = entities.copy()
    kind = np.arange(len(e)) % 50  # 80 % missing, 2 % that do not parse: 10 % of the values present
    e["employees"] = np.where(kind < 40, None, np.where(kind == 40, "lots", e["employees"]))
    _write(tmp_path, e, history)
    report = _run(tmp_path)
    assert report["entities"]["quarantined_by_reason"] == {"unparseable:employees": 12}
    kept = pd.concat([pd.read_parquet(tmp_path / "out" / s) for s in ("train", "validation", "test")])
    assert len(kept) == 588 and kept["employees"].isna().sum() == 480


def test_empty_file(tmp_path, clean, monkeypatch):
    entities, history = clean
    _write(tmp_path, entities.iloc[:0], history)
    _assert_failed(tmp_path, monkeypatch, "entities", "empty")


def test_no_input_files(tmp_path, monkeypatch):
    (tmp_path / "in" / "entities").mkdir(parents=True)
    _assert_failed(tmp_path, monkeypatch, "entities", "no CSV or Parquet files")


def test_one_class_label(tmp_path, clean, monkeypatch):
    entities, history = clean
    _write(tmp_path, entities.assign(defaulted=0), history)
    _assert_failed(tmp_path, monkeypatch, "defaulted", "one class")


def test_spec_that_does_not_match_the_data(tmp_path, clean, monkeypatch):
    entities, history = clean
    e = entities.copy()
    e["industry"] = np.where(np.arange(len(e)) % 2 == 0, "bakery", e["industry"])  # half unknown
    _write(tmp_path, e, history)
    _assert_failed(
        tmp_path, monkeypatch, "industry", "not among the spec's categories", "bakery", "spec does not match"
    )


def test_spec_with_history_but_no_history_input(tmp_path, clean, monkeypatch):
    entities, history = clean
    _write(tmp_path, entities, history)
    code, message = _cli(tmp_path, monkeypatch, "--history", str(tmp_path / "nowhere"))  # the last one wins
    assert code == 2  # input the step cannot use
    assert "history" in message and "merchant_id" in message


def test_history_table_missing_a_column(tmp_path, clean):
    entities, history = clean
    _write(tmp_path, entities, history)
    path = tmp_path / "in" / "history" / "part-00000.csv"
    pd.read_csv(path, dtype=str).drop(columns=["days_late"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"history file .*missing column.*days_late"):
        _run(tmp_path)


def test_invalid_spec_names_the_field(tmp_path, clean, monkeypatch):
    entities, history = clean
    _write(tmp_path, entities, history)
    bad = tmp_path / "spec.yaml"
    bad.write_text(SPEC_PATH.read_text().replace("fn: max", "fn: median"))
    code, message = _cli(tmp_path, monkeypatch, "--feature-spec", str(bad))  # the last one wins
    assert code == 2  # input the step cannot use
    assert "history.aggregates[6].fn" in message


def test_host_comes_from_resourceconfig(tmp_path, clean, monkeypatch):
    entities, history = clean
    _write(tmp_path, entities, history)
    (tmp_path / "ml" / "config").mkdir(parents=True)
    (tmp_path / "ml" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})
    )
    code, _ = _cli(tmp_path, monkeypatch)
    assert code == 0
    assert (tmp_path / "out" / "train" / "part-algo-2.parquet").exists()
    assert (tmp_path / "out" / "report" / "report-algo-2.json").exists()
    assert not (tmp_path / "out" / "report" / "report.json").exists()  # not the first host
    # Each of several hosts writes its share of the baseline; the merged one is made from all of them.
    assert os.listdir(tmp_path / "out" / "baseline") == ["partial-algo-2.json"]
    assert not list((tmp_path / "out").rglob("*.tmp"))  # atomic writes leave no temp files
    assert os.listdir(tmp_path / "out" / "quarantine") == ["part-algo-2.parquet"]


def test_a_spill_folder_that_does_not_exist_yet_is_made_and_left_empty(tmp_path, clean, monkeypatch):
    entities, history = clean
    _write(tmp_path, entities, history)
    scratch = tmp_path / "spill" / "here"
    code, _ = _cli(tmp_path, monkeypatch, "--scratch", str(scratch))
    assert code == 0 and (tmp_path / "out" / "train" / "part-algo-1.parquet").exists()
    assert scratch.is_dir() and not list(scratch.iterdir())  # the run's own folder inside is removed
