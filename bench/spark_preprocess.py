"""The Preprocess step of a Spark environment (prod) vs the embedded one (dev), through the local
runner, on the same data: wall time of each, and a check that both gave the same answer.

    .venv/bin/python bench/spark_preprocess.py [--rows 2000] [--runs 1]

Each environment's definition (as CDK deploys it) is filled with local values and cut to its
Preprocess step; the local runner runs prod's `smspark-submit` step once in Spark's local mode
(a new JVM per run, as a job would start one) and dev's step on DuckDB.  Prints the medians, the
ratio Spark / embedded, and whether the reports (row accounting, reasons, split, Feature Store
records) and every train/validation/test/quarantine row are equal (numbers within 1e-9).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SPEC = REPO / "workflow" / "specs" / "merchant_credit.yaml"


def _run(env: str, root: Path, params: dict[str, str]) -> tuple[float, Path]:
    from pipeline_steps.common.feature_spec import load_spec
    from workflow.definition.cached import definition_text
    from workflow.definition.environment import settings_for_environment
    from workflow.local_runner.local_values import local_values
    from workflow.local_runner.runner import LocalPipelineRunner, fill_placeholders
    from workflow.local_runner.storage import LocalS3

    text = definition_text(load_spec(SPEC), settings_for_environment(env))
    definition = fill_placeholders(text, local_values(LocalS3(root), SPEC))
    definition["Steps"] = [s for s in definition["Steps"] if s["Name"] == "Preprocess"]
    started = time.perf_counter()
    result = LocalPipelineRunner(
        definition, root, pipeline_name=f"bench-{env}", use_cache=False, echo=lambda _: None
    ).run(params)
    seconds = time.perf_counter() - started
    if result.status != "Succeeded":
        raise SystemExit(f"{env}: Preprocess {result.status}: {result.steps['Preprocess'].message}")
    train = next(v for k, v in result.properties.items() if "Preprocess" in k and "'train'" in k)
    return seconds, LocalS3(root).path(train.rsplit("/", 1)[0])


def _same(spark: Path, embedded: Path) -> list[str]:
    import pandas as pd

    problems = []
    a, b = (json.loads((folder / "report" / "report.json").read_text()) for folder in (spark, embedded))
    problems += [part for part in ("entities", "history", "split", "feature_store") if a[part] != b[part]]
    for name in ("train", "validation", "test", "quarantine"):
        try:
            pd.testing.assert_frame_equal(
                pd.read_parquet(spark / name), pd.read_parquet(embedded / name), check_dtype=False, rtol=1e-9
            )
        except AssertionError as err:
            problems.append(f"{name}: {str(err)[:200]}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    from workflow.datasets import merchant_credit as mc
    from workflow.local_runner.local_values import LOCAL_RAW_BUCKET
    from workflow.local_runner.storage import LocalS3

    root = Path(tempfile.mkdtemp(prefix="bench-spark-preprocess-"))
    base = f"s3://{LOCAL_RAW_BUCKET}/merchant-credit"
    mc.make(str(LocalS3(root).path(base)), args.rows, seed=3, parts=2)
    params = {"EntitiesUri": f"{base}/entities/", "HistoryUri": f"{base}/history/"}
    times: dict[str, list[float]] = {"prod": [], "dev": []}
    outputs: dict[str, Path] = {}
    for _ in range(args.runs):
        for env in ("dev", "prod"):
            seconds, outputs[env] = _run(env, root, params)
            times[env].append(seconds)
    spark, embedded = statistics.median(times["prod"]), statistics.median(times["dev"])
    print(f"{args.rows:,} merchants, {args.runs} run(s), medians:")
    print(f"  embedded (dev, DuckDB)   {embedded:8.1f} s")
    print(f"  spark (prod, local mode) {spark:8.1f} s   ratio {spark / embedded:.1f}x")
    problems = _same(outputs["prod"], outputs["dev"])
    print("  same answer: " + ("yes" if not problems else "NO: " + "; ".join(problems)))


if __name__ == "__main__":
    main()
