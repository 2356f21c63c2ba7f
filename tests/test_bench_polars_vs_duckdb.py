"""The Polars side of `bench/polars_vs_duckdb.py` does the work of the step's DuckDB statements.

The benchmark races the two engines at scale and is only fair while both do the same work; this
keeps that true as the plan changes, on a small generated data set with the generator's mess
(out-of-range values, missing keys, exact and key duplicates): the same accounting, quarantined
rows and reasons, and features.  It also shows that the comparison catches a changed feature.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from polars_vs_duckdb import differences, entities_kept, run_duckdb, run_polars  # noqa: E402 - bench/ is not a package

from workflow.datasets import merchant_credit  # noqa: E402 - after sys.path: bench/ is not a package


def test_polars_does_the_work_of_the_duckdb_statements(tmp_path: Path) -> None:
    data = tmp_path / "data"
    merchant_credit.make(str(data), 1000, seed=3, parts=2)
    kept = entities_kept(data)
    run_duckdb(data, kept, tmp_path / "duckdb", threads=1, memory_limit_mb=None)
    run_polars(data, kept, tmp_path / "polars")
    reasons = json.loads((tmp_path / "polars" / "accounting.json").read_text())["quarantined_by_reason"]
    assert reasons["exact_duplicate"] and reasons["duplicate_key:merchant_id+month"]
    assert any(code.startswith("out_of_range:") for code in reasons)
    assert differences(tmp_path / "duckdb", tmp_path / "polars") == []

    features = tmp_path / "polars" / "features.parquet"
    changed = pl.read_parquet(features).with_columns(pl.col("card_volume_mean_3m") * (1 + 1e-6))
    changed.write_parquet(features)
    assert differences(tmp_path / "duckdb", tmp_path / "polars") == ["features: card_volume_mean_3m differs"]
