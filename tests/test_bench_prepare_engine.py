"""The preprocess step (SQL on DuckDB) gives the answer of the pandas implementation it replaced.

`bench/prepare_engines.py` runs both side by side at scale; this keeps the comparison (and the
benchmark's baseline) working at a small size: same row accounting, quarantine reasons and
duplicates per table, cut dates, quarantined rows and reasons, and every feature of every row.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from pandas_preprocess.run import Config as PandasConfig  # noqa: E402 - after sys.path: bench/ is not a package
from pandas_preprocess.run import run as pandas_run  # noqa: E402 - after sys.path: bench/ is not a package
from prepare_engines import SPEC, same_answer  # noqa: E402 - after sys.path: bench/ is not a package

from pipeline_steps.preprocess.run import Config, run  # noqa: E402 - after sys.path: bench/ is not a package
from workflow.datasets import merchant_credit  # noqa: E402 - after sys.path: bench/ is not a package


def test_the_sql_engine_gives_the_pandas_answer(tmp_path):
    data = tmp_path / "data"
    merchant_credit.make(str(data), 3000, seed=3, parts=2)  # with the generator's mess and duplicates
    pandas_run(
        PandasConfig(spec=SPEC, entities=data / "entities", history=data / "history", output=tmp_path / "p")
    )
    report = run(
        Config(spec=SPEC, entities=data / "entities", history=data / "history", output=tmp_path / "d")
    )
    assert report["entities"]["rows_quarantined"] > 0 and report["history"]["quarantined_by_reason"]
    assert report["entities"]["duplicates"]["exact"] + report["entities"]["duplicates"]["key"] > 0
    assert same_answer(tmp_path / "p", tmp_path / "d") == []
