"""The DuckDB preparation candidate (bench/duckdb_prepare.py) gives the pandas step's answer.

The benchmark checks this at scale; this keeps the candidate from drifting while the step
changes: same row accounting and quarantine reasons, split dates and sizes, every feature.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from duckdb_prepare import prepare  # noqa: E402 - after sys.path: bench/ is not a package
from prepare_engines import SPEC, same_answer  # noqa: E402 - after sys.path: bench/ is not a package

from pipeline_steps.preprocess.run import Config, run  # noqa: E402 - after sys.path: bench/ is not a package
from workflow.datasets import merchant_credit  # noqa: E402 - after sys.path: bench/ is not a package


def test_duckdb_candidate_gives_the_same_answer_as_pandas(tmp_path):
    data = tmp_path / "data"
    merchant_credit.make(str(data), 3000, seed=3, parts=2)  # with the generator's mess and duplicates
    run(Config(spec=SPEC, entities=data / "entities", history=data / "history", output=tmp_path / "pandas"))
    report = prepare(SPEC, data / "entities", data / "history", tmp_path / "duckdb", threads=1)
    assert report["entities"]["rows_quarantined"] > 0 and report["history"]["by_reason"]
    assert same_answer(tmp_path / "pandas", tmp_path / "duckdb") == []
