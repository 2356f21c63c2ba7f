"""Preprocess outputs: point-in-time features, time split, sharding, baseline, Feature Store, ISLR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_steps.common import baseline
from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.common.transform import label_vector, model_matrix
from pipeline_steps.preprocess.run import Config, run
from workflow.datasets import merchant_credit as mc
from workflow.datasets.public import write_islr_default

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "workflow" / "specs" / "merchant_credit.yaml"
SPEC = load_spec(SPEC_PATH)
SPLITS = ("train", "validation", "test")


def _read(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder)


def _all_splits(out: Path) -> pd.DataFrame:
    return pd.concat([_read(out / s) for s in SPLITS], ignore_index=True)


# ---- point in time ---------------------------------------------------------------------------
def _tiny(tmp: Path, extra_history: list[dict] | None = None) -> dict:
    """Two merchants; M1 applies on 2023-06-15 with a hand-made history."""
    ent = pd.DataFrame(
        {
            "application_id": ["A1", "A2", "A3"],
            "application_date": ["2023-06-15", "2023-07-01", "2023-08-01"],
            "defaulted": ["1", "0", "0"],
            "merchant_id": ["M1", "M2", "M3"],
            "industry": ["retail"] * 3,
            "region": ["north"] * 3,
            "tenure_months": ["40"] * 3,
            "employees": ["3", "", "5"],
            "monthly_revenue": ["10000"] * 3,
            "owner_credit_score": ["700"] * 3,
            "requested_amount": ["20000"] * 3,
            "has_prior_loan": ["false"] * 3,
        }
    )
    rows = []
    for i, month in enumerate(pd.period_range("2022-04", "2023-05", freq="M")):  # 14 months before
        rows.append(
            {
                "merchant_id": "M1",
                "month": f"{month}-01",
                "card_volume": str(1000 + 100 * i),
                "txn_count": str(10 + i),
                "chargebacks": str(i % 3),
                "amount_due": "500",
                "amount_paid": "500" if i % 4 else "250",
                "days_late": str(i * 2),
            }
        )
    rows += extra_history or []
    rows.append(
        {
            "merchant_id": "M2",
            "month": "2023-07-01",
            "card_volume": "7",
            "txn_count": "1",
            "chargebacks": "0",
            "amount_due": "0",
            "amount_paid": "0",
            "days_late": "0",
        }
    )
    (tmp / "in" / "entities").mkdir(parents=True, exist_ok=True)
    (tmp / "in" / "history").mkdir(parents=True, exist_ok=True)
    ent.to_csv(tmp / "in" / "entities" / "e.csv", index=False)
    pd.DataFrame(rows).to_csv(tmp / "in" / "history" / "h.csv", index=False)
    run(
        Config(
            spec=SPEC_PATH,
            entities=tmp / "in" / "entities",
            history=tmp / "in" / "history",
            output=tmp / "out",
        )
    )
    return _all_splits(tmp / "out").set_index("application_id").to_dict("index")


def test_aggregates_match_a_hand_computation(tmp_path):
    row = _tiny(tmp_path)["A1"]
    # months 2022-04 .. 2023-05 are i = 0..13; the application month is 2023-06.
    assert row["card_volume_mean_3m"] == pytest.approx(np.mean([2100, 2200, 2300]))
    assert row["card_volume_mean_12m"] == pytest.approx(np.mean([1000 + 100 * i for i in range(2, 14)]))
    assert row["txn_count_mean_3m"] == pytest.approx(np.mean([21, 22, 23]))
    assert row["chargebacks_sum_6m"] == sum(i % 3 for i in range(8, 14))
    assert row["amount_due_sum_12m"] == 12 * 500
    paid = sum(500 if i % 4 else 250 for i in range(2, 14))
    assert row["amount_paid_sum_12m"] == paid
    assert row["days_late_max_12m"] == 26
    assert row["active_months_12m"] == 12
    assert row["repayment_ratio_12m"] == pytest.approx(paid / 6000)
    assert row["volume_trend_3m_12m"] == pytest.approx(2200 / np.mean([1000 + 100 * i for i in range(2, 14)]))
    assert row["request_to_revenue"] == pytest.approx(2.0)


def test_history_from_the_application_month_on_changes_nothing(tmp_path):
    before = _tiny(tmp_path / "a")
    leak = [
        {
            "merchant_id": "M1",
            "month": m,
            "card_volume": "999999",
            "txn_count": "9999",
            "chargebacks": "99",
            "amount_due": "100000",
            "amount_paid": "0",
            "days_late": "300",
        }
        for m in ("2023-06-01", "2023-06-20", "2023-07-01", "2023-09-01")
    ]
    after = _tiny(tmp_path / "b", leak)
    for name in SPEC.aggregate_names + SPEC.derived_names:
        a, b = before["A1"][name], after["A1"][name]
        assert a == pytest.approx(b, nan_ok=True), name
    # M2's only history row is in its application month: it has no activity at all.
    assert before["A2"]["active_months_12m"] == 0 and np.isnan(before["A2"]["card_volume_mean_3m"])


# ---- generated data end to end -------------------------------------------------------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    mc.make(str(root / "in"), 3000, seed=4, parts=2)
    out = root / "one"
    report = run(
        Config(
            spec=SPEC_PATH,
            entities=root / "in" / "entities",
            history=root / "in" / "history",
            output=out,
            validation_start="2024-01-01",
            test_start="2024-07-01",
        )
    )
    return root, out, report


def test_split_is_ordered_by_time(generated):
    _, out, report = generated
    frames = {s: _read(out / s) for s in SPLITS}
    assert frames["train"][SPEC.entity_time].max() < pd.Timestamp("2024-01-01")
    assert frames["validation"][SPEC.entity_time].min() >= pd.Timestamp("2024-01-01")
    assert frames["validation"][SPEC.entity_time].max() < pd.Timestamp("2024-07-01")
    assert frames["test"][SPEC.entity_time].min() >= pd.Timestamp("2024-07-01")
    for s in SPLITS:
        assert list(frames[s].columns) == [SPEC.entity_id, SPEC.entity_time, SPEC.label] + SPEC.feature_names
        assert report["split"][s]["rows"] == len(frames[s])
        assert report["split"][s]["label_rate"] == pytest.approx(
            label_vector(frames[s][SPEC.label], SPEC).mean()
        )
    assert sum(report["split"][s]["rows"] for s in SPLITS) == report["entities"]["rows_out"]
    model_matrix(frames["train"], SPEC)  # the shared transform accepts what preprocess writes


def test_split_fractions_from_the_spec(tmp_path, generated):
    root, _, _ = generated
    report = run(
        Config(
            spec=SPEC_PATH,
            entities=root / "in" / "entities",
            history=root / "in" / "history",
            output=tmp_path,
        )
    )
    rows = {s: report["split"][s]["rows"] for s in SPLITS}
    total = sum(rows.values())
    assert rows["train"] / total == pytest.approx(0.70, abs=0.02)
    assert rows["test"] / total == pytest.approx(0.15, abs=0.02)
    assert report["split"]["train"]["last_time"] < report["split"]["validation"]["first_time"]
    assert report["split"]["validation"]["last_time"] < report["split"]["test"]["first_time"]


def test_two_hosts_give_disjoint_outputs_that_equal_one_host(tmp_path, generated):
    root, one, one_report = generated
    for i, host in enumerate(("algo-1", "algo-2")):
        shard = tmp_path / f"shard{i}"
        shard.mkdir()
        (shard / f"part-0000{i}.parquet").symlink_to(root / "in" / "entities" / f"part-0000{i}.parquet")
        run(
            Config(
                spec=SPEC_PATH,
                entities=shard,
                history=root / "in" / "history",
                output=tmp_path / "two",
                host=host,
                first_host=i == 0,
                validation_start="2024-01-01",
                test_start="2024-07-01",
            )
        )
    for folder in [*SPLITS, "quarantine", *(f"feature_store/{g.name}" for g in SPEC.feature_groups)]:
        parts = [_read(tmp_path / "two" / folder / f"part-{h}.parquet") for h in ("algo-1", "algo-2")]
        key = "_row_number" if folder == "quarantine" else SPEC.entity_id
        if folder != "quarantine":
            assert not set(parts[0][key]) & set(parts[1][key]), folder  # disjoint
            assert len(parts[0]) and len(parts[1])
        both = pd.concat(parts, ignore_index=True)
        sort = ["_table", "_source_file", "_row_number"] if folder == "quarantine" else [key]
        both = both.sort_values(sort).reset_index(drop=True)
        single = _read(one / folder).sort_values(sort).reset_index(drop=True)
        pd.testing.assert_frame_equal(both, single, check_dtype=False)
    r1 = json.loads((tmp_path / "two" / "report" / "report-algo-1.json").read_text())
    r2 = json.loads((tmp_path / "two" / "report" / "report-algo-2.json").read_text())
    assert r1["entities"]["rows_in"] + r2["entities"]["rows_in"] == one_report["entities"]["rows_in"]
    assert (tmp_path / "two" / "report" / "report.json").exists()


def test_report_accounts_for_every_row_and_hashes_the_inputs(generated):
    root, out, report = generated
    saved = json.loads((out / "report" / "report.json").read_text())
    assert saved["data_sha256"] == report["data_sha256"] and len(saved["data_sha256"]) == 64
    for table in ("entities", "history"):
        acc = saved[table]
        assert acc["rows_in"] == acc["rows_out"] + acc["rows_quarantined"] and acc["invariant_holds"]
        assert sum(acc["quarantined_by_reason"].values()) == acc["rows_quarantined"] > 0
    assert saved["spec"]["digest"] == SPEC.digest
    assert [i["file"] for i in saved["inputs"]["entities"]] == ["part-00000.parquet", "part-00001.parquet"]
    quarantined = _read(out / "quarantine")
    assert (quarantined["_table"] == "entities").sum() == saved["entities"]["rows_quarantined"]
    assert (quarantined["_table"] == "history").sum() == saved["history"]["rows_quarantined"]


def test_baseline_is_in_model_monitor_format(generated):
    _, out, report = generated
    stats = json.loads((out / "baseline" / "statistics.json").read_text())
    cons = json.loads((out / "baseline" / "constraints.json").read_text())
    train = _read(out / "train")
    assert stats["version"] == 0.0 and stats["dataset"]["item_count"] == len(train)
    assert [f["name"] for f in stats["features"]] == SPEC.model_features
    by_name = {f["name"]: f for f in stats["features"]}
    num = by_name["monthly_revenue"]
    assert num["inferred_type"] == "Fractional"
    ns = num["numerical_statistics"]
    assert set(ns) == {"common", "mean", "sum", "std_dev", "min", "max", "distribution"}
    assert ns["mean"] == pytest.approx(train["monthly_revenue"].mean())
    assert ns["common"] == {"num_present": len(train), "num_missing": 0}
    kll = ns["distribution"]["kll"]
    assert sum(b["count"] for b in kll["buckets"]) == len(train) and len(kll["buckets"]) == 10
    assert set(kll["buckets"][0]) == {"lower_bound", "upper_bound", "count"}
    assert set(kll["sketch"]["parameters"]) == {"c", "k"} and isinstance(kll["sketch"]["data"][0], list)
    assert by_name["employees"]["inferred_type"] == "Integral"
    assert (
        by_name["employees"]["numerical_statistics"]["common"]["num_missing"]
        == train["employees"].isna().sum()
    )
    cat = by_name["industry"]
    assert cat["inferred_type"] == "String"
    ss = cat["string_statistics"]
    assert ss["distinct_count"] == train["industry"].nunique()
    assert sum(b["count"] for b in ss["distribution"]["categorical"]["buckets"]) == len(train)
    cons_by = {f["name"]: f for f in cons["features"]}
    assert cons_by["industry"]["string_constraints"]["domains"] == list(SPEC.column("industry").categories)
    assert cons_by["monthly_revenue"]["num_constraints"] == {"is_non_negative": True}
    assert 0 < cons_by["owner_credit_score"]["completeness"] < 1
    mc_ = cons["monitoring_config"]
    assert (
        mc_["evaluate_constraints"] == "Enabled" and "comparison_threshold" in mc_["distribution_constraints"]
    )


@pytest.mark.parametrize("ids", [["A1", "A2", "17"], [1, 2, 3], ["A1", None, "A3"]])
def test_baseline_sample_hashes_are_pandas_hashes_of_the_ids_as_text(ids):
    # The sample of every host's partial (and the evaluate step's) depends on these exact hashes.
    frame = pd.DataFrame({SPEC.entity_id: ids})
    expected = pd.util.hash_pandas_object(frame[SPEC.entity_id].astype("string"), index=False).to_numpy()
    assert baseline._row_hashes(frame, SPEC).tolist() == expected.tolist()


@pytest.mark.parametrize("ids", ["text", "integer", "missing"])
def test_baseline_from_arrow_batches_equals_the_pandas_path(monkeypatch, ids):
    # The step streams the training rows from DuckDB as Arrow batches; the Spark engine and the
    # evaluate step give pandas frames.  Small SAMPLE and BATCH sizes make every path run: samples
    # that fill up, features with and without missing values, batches merged into larger tables.
    monkeypatch.setattr(baseline, "SAMPLE", 16)
    monkeypatch.setattr(baseline, "BATCH", 70)
    pa = pytest.importorskip("pyarrow")
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame({name: rng.normal(1000, 300, n) for name in SPEC.model_features})
    frame["employees"] = pd.array(rng.integers(1, 50, n), dtype="Int64")
    frame.loc[rng.random(n) < 0.2, "employees"] = pd.NA
    frame.loc[rng.random(n) < 0.1, "monthly_revenue"] = np.nan
    frame["has_prior_loan"] = rng.random(n) < 0.3
    frame["industry"] = pd.array(rng.choice(["retail", "online", None], n), dtype="string")
    frame["region"] = pd.array(rng.choice(["north", "south"], n), dtype="string")
    id_values = {
        "text": [f"A{i}" for i in range(n)],
        "integer": list(range(n)),
        "missing": [None if i % 7 == 0 else f"A{i}" for i in range(n)],
    }[ids]
    frame[SPEC.entity_id] = id_values
    table = pa.Table.from_pandas(frame, preserve_index=False)
    batches = table.to_batches(max_chunksize=40)  # rebatched into tables of >= 70 rows
    from_arrow = baseline.partial_from_arrow(batches, SPEC)
    from_pandas = baseline.partial([t.to_pandas() for t in baseline._rebatched(batches, 70)], SPEC)
    assert from_arrow["item_count"] == from_pandas["item_count"] == n
    for name in SPEC.model_features:
        a, b = from_arrow["features"][name], from_pandas["features"][name]
        assert a["present"] == b["present"] and a["missing"] == b["missing"], name
        assert a.get("counts") == b.get("counts"), name
        assert a.get("hashes") == b.get("hashes") and a.get("values") == b.get("values"), name
        assert a.get("sum") == pytest.approx(b.get("sum")), name
    assert from_arrow["features"]["employees"]["missing"] == int(frame["employees"].isna().sum()) > 0
    assert len(from_arrow["features"]["card_volume_mean_3m"]["hashes"]) == 16


# ---- Feature Store ---------------------------------------------------------------------------
def test_feature_store_records_per_group(generated):
    _, out, report = generated
    kept = _all_splits(out)
    for group in SPEC.feature_groups:
        records = _read(out / "feature_store" / group.name)
        assert list(records.columns) == [SPEC.entity_id, SPEC.entity_time, *group.features]
        assert len(records) == len(kept) == report["feature_store"][group.name]["records"]
        assert records[SPEC.entity_time].str.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00Z").all()


# ---- a real public data set ----------------------------------------------------------------
def test_islr_default_through_preprocess(tmp_path):
    spec_path = ROOT / "workflow" / "specs" / "islr_default.yaml"
    spec = load_spec(spec_path)
    write_islr_default(str(tmp_path / "in"))
    report = run(
        Config(spec=spec_path, entities=tmp_path / "in" / "entities", history=None, output=tmp_path / "out")
    )
    assert report["entities"]["rows_in"] == 10_000 == report["entities"]["rows_out"]
    assert report["history"] is None
    train = _read(tmp_path / "out" / "train")
    assert set(train["default"]) == {"Yes", "No"}
    y = label_vector(_all_splits(tmp_path / "out")["default"], spec)
    assert y.sum() == 333
    assert train["balance_to_income"].iloc[0] == pytest.approx(
        train["balance"].iloc[0] / train["income"].iloc[0]
    )
    stats = json.loads((tmp_path / "out" / "baseline" / "statistics.json").read_text())
    assert {f["name"]: f["inferred_type"] for f in stats["features"]} == {
        "student": "String",
        "balance": "Fractional",
        "income": "Fractional",
        "balance_to_income": "Fractional",
    }
    assert (tmp_path / "out" / "feature_store" / "card-customer" / "part-algo-1.parquet").exists()
