"""The Spark engine runs the embedded engine's plan and gives the same answer, in Spark's local mode.

One SparkSession for the session (starting one costs seconds), one small data set with
everything the rules handle: bad rows of every kind, duplicates whose copies sit in different
files (exact and key), a monthly history, CSV entities (row numbers counted in file order) and
Parquet history (Spark's row index).  Both engines run the whole step (`run.run`), so the
report, the baseline and every output file are compared, not just row counts.  The two runs
happen in the background lane started with the session (tests/background_jobs.py, the data
and the runs are there); the comparison test runs last and compares what they wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline_steps.preprocess_spark.spark_dialect import java_time_format, to_spark

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("train", "validation", "test", "quarantine", "feature_store")


def test_spark_gives_the_embedded_engines_answer(spark_vs_embedded):
    root, reports = spark_vs_embedded  # (folder with in/, embedded/, spark/; {engine: report})
    embedded, spark = reports["embedded"], reports["spark"]
    assert (embedded["engine"], spark["engine"]) == ("duckdb", "spark")
    # The data set has what the comparison is about.
    ent = embedded["entities"]
    assert ent["rows_quarantined"] > 0 and len(ent["quarantined_by_reason"]) >= 4
    assert ent["duplicates"]["exact"] >= 1 and ent["duplicates"]["key"] >= 1
    assert embedded["history"]["rows_quarantined"] > 0
    # Row accounting and reasons, split (cut dates, sizes, label rates), Feature Store records.
    for part in ("entities", "history", "split", "feature_store", "features", "data_sha256"):
        assert spark[part] == embedded[part], part
    # The monitoring baseline (aggregates of aggregates: equal to the last bits but for summation order).
    for name in ("statistics.json", "constraints.json"):
        a, b = (json.loads((root / e / "baseline" / name).read_text()) for e in ("embedded", "spark"))
        assert b == _approx(a), name
    # Every row of every output: split membership, features, quarantine reasons, records.
    compared = 0
    for path in sorted((root / "embedded").rglob("*.parquet")):
        if path.relative_to(root / "embedded").parts[0] not in OUTPUTS:
            continue
        other = root / "spark" / path.relative_to(root / "embedded")
        a, b = pd.read_parquet(path), pd.read_parquet(other)
        assert list(a.columns) == list(b.columns), path.name
        # Point-in-time means are sums in another order on Spark: equal to 1e-9, relatively.
        pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9, atol=0, obj=str(path.name))
        compared += len(a)
    assert compared > 1000


def _approx(value: Any) -> Any:
    """`value` with every float compared to 1e-9, relatively."""
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return pytest.approx(value, rel=1e-9, abs=0) if isinstance(value, float) else value


def test_the_plan_reads_as_spark_sql():
    """The dialect differences sqlglot leaves: literal letters in time formats."""
    assert java_time_format("%Y-%m-%dT%H:%M:%SZ") == "yyyy-MM-dd'T'HH:mm:ss'Z'"
    spark_sql = to_spark("SELECT strftime(t, '%Y-%m-%dT%H:%M:%SZ') AS e, TRY_CAST(x AS TIMESTAMP) AS d")
    assert "DATE_FORMAT(t, 'yyyy-MM-dd\\'T\\'HH:mm:ss\\'Z\\'')" in spark_sql
    assert "TRY_CAST(x AS TIMESTAMP_NTZ)" in spark_sql  # DuckDB's TIMESTAMP has no time zone
    with pytest.raises(ValueError, match="no Spark equivalent"):
        java_time_format("%A")


def test_the_code_bundle_runs_without_pyarrow_or_duckdb(tmp_path):
    """AWS's Spark image has neither: the application imports from the bundle CDK uploads alone."""
    import subprocess
    import sys

    from workflow.definition.spark_step import code_zip

    bundle = tmp_path / "code.zip"
    bundle.write_bytes(code_zip(ROOT))
    probe = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['duckdb'] = None; "
        "import pipeline_steps.preprocess_spark.spark_main as m, pipeline_steps.preprocess.run, "
        "pipeline_steps.preprocess.__main__, pipeline_steps.preprocess_spark.spark_engine; "
        "print(m.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(bundle)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(bundle))  # from the bundle, not the repository
