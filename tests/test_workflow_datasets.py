"""The synthetic merchant credit generator and the ISLR Default loader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline_steps.common.feature_spec import load_spec
from workflow.datasets import merchant_credit as mc
from workflow.datasets.public import load_islr_default, write_islr_default

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_spec(ROOT / "workflow" / "specs" / "merchant_credit.yaml")
ISLR_SPEC = load_spec(ROOT / "workflow" / "specs" / "islr_default.yaml")


@pytest.fixture(scope="module")
def normal():
    return mc.generate(4000, 11)


@pytest.fixture(scope="module")
def drifted():
    return mc.generate(4000, 11, drift=True)


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    a = mc.make(str(tmp_path / "a"), 800, seed=5)
    b = mc.make(str(tmp_path / "b"), 800, seed=5)
    c = mc.make(str(tmp_path / "c"), 800, seed=6)
    for kind in ("entities", "history"):
        ta, tb, tc = (pq.read_table(x[kind][0]) for x in (a, b, c))
        assert ta.equals(tb), kind
        assert not ta.equals(tc), kind


def test_tables_have_exactly_the_spec_columns(normal):
    entities, history = normal
    assert list(entities.columns) == SPEC.column_names
    h = SPEC.history
    assert set(history.columns) == {h.key, h.time} | {c.name for c in h.columns}
    assert entities["industry"].isin(SPEC.column("industry").categories).all()
    assert entities["region"].isin(SPEC.column("region").categories).all()


def test_label_rate_is_imbalanced_and_depends_on_signal(normal):
    entities, _ = normal
    y = entities["defaulted"].astype(int).to_numpy()
    assert 0.04 <= y.mean() <= 0.12
    score = entities["owner_credit_score"].astype(float).to_numpy()
    low, high = score < np.quantile(score, 0.2), score > np.quantile(score, 0.8)
    assert y[low].mean() > 2 * y[high].mean()  # credit score carries real signal
    rate = entities.groupby("industry")["defaulted"].mean()
    assert rate["restaurant"] > rate["health"]  # so does industry


def test_history_spans_before_and_after_the_application(normal):
    entities, history = normal
    app_month = pd.to_datetime(entities["application_date"]).dt.to_period("M")
    month = pd.to_datetime(history["month"]).dt.to_period("M")
    by_merchant = dict(zip(entities["merchant_id"], app_month, strict=True))
    pairs = zip(history["merchant_id"].astype(str), month, strict=True)
    offset = np.array([(m - by_merchant[k]).n for k, m in pairs])
    assert offset.min() == -mc.MONTHS_BEFORE and offset.max() == mc.MONTHS_AFTER
    assert (offset >= 0).mean() > 0.05  # rows after the application exist on purpose
    dates = pd.to_datetime(entities["application_date"])
    assert (dates.max() - dates.min()).days > 2.5 * 365


def test_drift_shifts_volume_lateness_industry_mix_and_default_rate(normal, drifted):
    (e0, h0), (e1, h1) = normal, drifted
    assert h1["card_volume"].median() < 0.9 * h0["card_volume"].median()
    assert h1["days_late"].mean() > 1.2 * h0["days_late"].mean()

    def share(e):
        return (e["industry"] == "restaurant").mean()

    assert share(e1) > share(e0) + 0.04
    assert e1["defaulted"].astype(float).mean() > 1.3 * e0["defaulted"].astype(float).mean()
    assert pd.to_datetime(e1["application_date"]).min() > pd.to_datetime(e0["application_date"]).max()
    assert not set(e0["application_id"]) & set(e1["application_id"])


def test_mess_adds_every_kind_of_bad_row(normal):
    entities, history = normal
    e, h = mc.add_mess(entities, history, seed=11)
    assert len(e) > len(entities) and len(h) > len(history)
    assert e.duplicated().sum() > 0  # exact duplicates
    assert e["application_id"].dropna().duplicated().sum() > e.duplicated().sum()  # repeated ids too
    revenue = pd.to_numeric(e["monthly_revenue"], errors="coerce")
    assert (revenue.isna() & e["monthly_revenue"].notna()).sum() > 0  # text that is not a number
    assert (~e["industry"].isin(SPEC.column("industry").categories)).sum() > 0
    assert (pd.to_numeric(e["tenure_months"], errors="coerce") < 0).sum() > 0
    assert e["region"].isna().sum() > 0 and e["defaulted"].isna().sum() > 0
    assert (h["card_volume"] < 0).sum() > 0 and h.duplicated().sum() > 0


def test_parts_keep_every_copy_of_an_application_in_one_file(tmp_path):
    written = mc.make(str(tmp_path), 1500, seed=2, parts=3, fmt="csv")
    assert len(written["entities"]) == 3 and len(written["history"]) == 3
    frames = [pd.read_csv(p, dtype=str).assign(part=i) for i, p in enumerate(written["entities"])]
    allrows = pd.concat(frames)
    parts_per_id = allrows.dropna(subset=["application_id"]).groupby("application_id")["part"].nunique()
    assert parts_per_id.max() == 1
    assert len(allrows) > 1500


def test_cli_writes_parquet_parts(tmp_path):
    out = tmp_path / "data"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workflow.datasets",
            "--rows",
            "300",
            "--seed",
            "1",
            "--out",
            str(out),
            "--drift",
            "--parts",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (out / "entities").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert pq.read_table(out / "history" / "part-00001.parquet").num_rows > 0


def test_islr_default_is_the_real_table_with_id_and_time(tmp_path):
    frame = load_islr_default()
    assert list(frame.columns) == ISLR_SPEC.column_names
    assert len(frame) == 10_000 and frame["customer_id"].is_unique
    assert (frame["default"] == "Yes").sum() == 333  # the published count
    assert set(frame["student"]) == set(ISLR_SPEC.column("student").categories)
    again = pd.read_csv(write_islr_default(str(tmp_path)), dtype=str)
    assert again["as_of_date"].tolist() == frame["as_of_date"].tolist()  # deterministic time column
    assert pd.to_datetime(again["as_of_date"]).nunique() > 1000


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 400 merchants, 2 per file: several blocks and files from a small data set."""
    monkeypatch.setattr(mc, "BLOCK_ROWS", 400)
    monkeypatch.setattr(mc, "CHUNK_BLOCKS", 2)


def _read_all(written: dict[str, list[str]], kind: str) -> pd.DataFrame:
    return pd.concat([pq.read_table(p).to_pandas() for p in written[kind]], ignore_index=True)


def test_blocks_and_workers_do_not_change_the_bytes(tmp_path, small_blocks):
    one = mc.make(str(tmp_path / "one"), 2000, seed=3, parts=2, workers=1)
    two = mc.make(str(tmp_path / "two"), 2000, seed=3, parts=2, workers=2)
    # 5 blocks -> 3 files of 2, 2 and 1 blocks, each split in 2 parts
    assert [Path(p).name for p in one["history"]] == [f"part-{i:05d}.parquet" for i in range(6)]
    for kind in ("entities", "history"):
        for a, b in zip(one[kind], two[kind], strict=True):
            assert Path(a).read_bytes() == Path(b).read_bytes(), (kind, a)
        assert pq.ParquetFile(one[kind][0]).metadata.num_row_groups == 2  # one row group per block
    assert not list(tmp_path.rglob("*.tmp"))
    # every block has its own stream: no two blocks repeat each other's values
    history = _read_all(one, "history")
    assert history["card_volume"].dropna().duplicated().mean() < 0.01


def test_every_copy_of_an_application_shares_a_file_across_blocks(tmp_path, small_blocks):
    written = mc.make(str(tmp_path), 2000, seed=4, parts=3, workers=1)
    frames = [pq.read_table(p).to_pandas().assign(file=i) for i, p in enumerate(written["entities"])]
    entities = pd.concat(frames, ignore_index=True)
    assert entities["application_id"].dropna().duplicated().sum() > 0
    assert entities.dropna(subset=["application_id"]).groupby("application_id")["file"].nunique().max() == 1
    assert entities["application_id"].nunique() >= 2000 - 2 * 5  # every merchant, a few ids blanked
    history = pd.concat(
        [pq.read_table(p).to_pandas().assign(file=i) for i, p in enumerate(written["history"])]
    )
    assert history.dropna(subset=["merchant_id"]).groupby("merchant_id")["file"].nunique().max() == 1
    assert history["merchant_id"].isna().sum() >= 5  # the damage is per block
    assert set(history["merchant_id"].dropna()) <= set(entities["merchant_id"])


def test_a_failed_run_publishes_nothing_and_leaves_no_temporary_files(tmp_path, small_blocks, monkeypatch):
    made = mc._block_tables

    def fail_on_block_3(seed, block, *args):
        if block == 3:
            raise RuntimeError("disk full")
        return made(seed, block, *args)

    monkeypatch.setattr(mc, "_block_tables", fail_on_block_3)
    with pytest.raises(RuntimeError, match="disk full"):
        mc.make(str(tmp_path), 2000, seed=3, workers=1)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_new_data_set_replaces_the_part_files_of_a_larger_one(tmp_path, small_blocks):
    mc.make(str(tmp_path), 2000, seed=3, workers=1)
    again = mc.make(str(tmp_path), 500, seed=3, workers=1)
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == ["part-00000.parquet"]
    assert again["history"] == [str(tmp_path / "history" / "part-00000.parquet")]


def test_written_history_keeps_its_types_gaps_and_cheap_encodings(tmp_path, small_blocks):
    written = mc.make(str(tmp_path), 2000, seed=8, workers=1)
    table = pq.read_table(written["history"][0])
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {
        "merchant_id": "string",
        "month": "date32[day]",
        **dict.fromkeys(("card_volume", "amount_due", "amount_paid"), "double"),
        **dict.fromkeys(("txn_count", "chargebacks", "days_late"), "int64"),
    }
    for name in ("card_volume", "txn_count", "chargebacks", "amount_due", "amount_paid", "days_late"):
        assert 0.004 < table.column(name).null_count / len(table) < 0.02, name  # the mess's 1 %
    counts = table.select(["txn_count", "chargebacks", "days_late"]).to_pandas()
    assert (counts.min() >= 0).all() and counts["txn_count"].median() > 20
    # the encodings BENCHMARKS.md measured: delta-coded counts, amounts plain and uncompressed
    meta = pq.ParquetFile(written["history"][0]).metadata.row_group(0)
    column = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in column["txn_count"].encodings
    assert column["card_volume"].compression == "UNCOMPRESSED"
    assert "RLE_DICTIONARY" not in column["card_volume"].encodings


def test_ids_are_zero_padded_and_wider_numbers_keep_every_digit():
    ids = mc._ids("M", np.array([0, 7, 12_345_678, 123_456_789]), 8).to_pylist()
    assert ids == ["M00000000", "M00000007", "M12345678", "M123456789"]
    assert list(mc.merchant_ids(np.array([50_000_001]))) == ["M50000001"]


def test_missing_history_cells_are_chosen_one_by_one_at_the_rate():
    from workflow.datasets.mess import _bernoulli_rows

    rows = _bernoulli_rows(np.random.default_rng(0), 400_000, 0.01)
    assert (np.diff(rows) > 0).all() and rows[0] >= 0 and rows[-1] < 400_000
    assert abs(len(rows) - 4000) < 5 * np.sqrt(4000 * 0.99)  # binomial: within 5 standard deviations
    assert len(_bernoulli_rows(np.random.default_rng(0), 0, 0.01)) == 0
