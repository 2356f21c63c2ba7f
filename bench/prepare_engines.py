"""Preparation engines side by side: the pandas preprocess it replaced vs the step's DuckDB engine.

    .venv/bin/python bench/prepare_engines.py [--rows 1000000] [--runs 3] [--threads 2]

Generates the merchant data once per size (kept in .cache/bench-data/<rows>/), then runs each
engine --runs times, each in its own process: wall time and peak resident memory of that
process (os.wait4's ru_maxrss).  Prints medians and the ratios DuckDB / pandas (targets from
issue 12: time <= 0.2, peak memory <= 0.25), after checking that both produced the same
answer: row accounting and quarantine reasons per table, split cut dates and sizes, and every
feature of every train/validation/test row (numbers within 1e-9 relative).

Every run starts after --settle seconds of rest: here a run started right after pandas' 7.5 GiB
process exits is slowed by the memory just freed (DuckDB at 1M merchants, `/usr/bin/time` on the
--one runs: 16.0 s right after a pandas run, 13.7 s alone and 13.7 s after 20 s of rest), which
measures the machine, not the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where it is used: the engine processes start light
    import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SPEC = REPO / "workflow" / "specs" / "merchant_credit.yaml"


def data_folder(rows: int) -> Path:
    folder = REPO / ".cache" / "bench-data" / str(rows)
    marker = folder / "_done"
    if not marker.exists():
        from workflow.datasets.merchant_credit import make

        started = time.perf_counter()
        shutil.rmtree(folder, ignore_errors=True)
        make(str(folder), rows, 7, parts=4)
        marker.write_text("ok\n")
        print(f"generated {rows:,} merchants in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return folder


def run_one(engine: str, data: Path, out: Path, threads: int, memory_limit: str | None) -> None:
    """In this (child) process: one engine's full preparation."""
    if engine == "pandas":
        sys.path.insert(0, str(Path(__file__).parent))
        from pandas_preprocess.run import Config as PandasConfig
        from pandas_preprocess.run import run as pandas_run

        pandas_run(PandasConfig(spec=SPEC, entities=data / "entities", history=data / "history", output=out))
    else:
        from pipeline_steps.preprocess.run import Config, run

        run(
            Config(
                spec=SPEC,
                entities=data / "entities",
                history=data / "history",
                output=out,
                threads=threads,
                memory_limit=memory_limit,
                scratch=out.parent,  # the spill folder (made and removed inside)
            )
        )


Measurement = tuple[float, float, float]  # wall seconds, peak GiB, CPU seconds


def measured(engine: str, data: Path, out: Path, threads: int, memory_limit: str | None) -> Measurement:
    """(wall seconds, peak RSS in GiB, CPU seconds) of one run in a fresh process."""
    shutil.rmtree(out, ignore_errors=True)
    argv = [__file__, "--one", engine, "--data", str(data), "--out", str(out), "--threads", str(threads)]
    return measure_process(argv + (["--memory-limit", memory_limit] if memory_limit else []), engine)


def measure_process(argv: list[str], label: str, env: dict[str, str] | None = None) -> Measurement:
    """(wall seconds, peak RSS in GiB, CPU seconds) of `python argv...` run as its own process
    (os.wait4 reports that process's own peak and CPU); `env` adds to the environment."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *argv], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{label} run failed")
    return seconds, usage.ru_maxrss / 1024 / 1024, usage.ru_utime + usage.ru_stime  # KiB -> GiB


def same_answer(pandas_out: Path, duck_out: Path) -> list[str]:
    """Differences between the two engines' outputs (empty: the same answer)."""
    import pandas as pd

    from pipeline_steps.common.feature_spec import load_spec
    from pipeline_steps.common.transform import label_vector

    spec = load_spec(SPEC)
    problems = []
    p_report = json.loads((pandas_out / "report" / "report.json").read_text())
    d_report = json.loads((duck_out / "report" / "report.json").read_text())
    for table in ("entities", "history"):
        p, d = p_report[table], d_report[table]
        for key in ("rows_in", "rows_out", "rows_quarantined", "quarantined_by_reason", "duplicates"):
            if p[key] != d[key]:
                problems.append(f"{table} {key}: pandas {p[key]} duckdb {d[key]}")
    for key in ("validation_start", "test_start"):
        if p_report["split"][key] != d_report["split"][key]:
            problems.append(f"split {key}: pandas {p_report['split'][key]} duckdb {d_report['split'][key]}")
    qa = pd.read_parquet(pandas_out / "quarantine").sort_values(["_table", "_source_file", "_row_number"])
    qb = pd.read_parquet(duck_out / "quarantine").sort_values(["_table", "_source_file", "_row_number"])
    # A Parquet integer value is quoted as stored ('999'); pandas showed it after its float conversion.
    whole = r"\b(\d+)\.0\b"
    ra, rb = (q["_reason"].str.replace(whole, r"\1", regex=True) for q in (qa, qb))
    if len(qa) != len(qb) or list(ra) != list(rb):
        problems.append(f"quarantine: {len(qa)} vs {len(qb)} rows, or different reasons")
    for name in ("train", "validation", "test"):
        a = pd.read_parquet(pandas_out / name).sort_values(spec.entity_id).reset_index(drop=True)
        b = pd.read_parquet(duck_out / name).sort_values(spec.entity_id).reset_index(drop=True)
        if (
            len(a) != len(b)
            or not (a[spec.entity_id].astype(str).values == b[spec.entity_id].astype(str).values).all()
        ):
            problems.append(f"{name}: different rows ({len(a)} vs {len(b)})")
            continue
        if not (label_vector(a[spec.label], spec) == label_vector(b[spec.label], spec)).all():
            problems.append(f"{name}: labels differ")
        for column in spec.feature_names:
            numeric = spec.feature_type(column) not in ("string", "category", "date")
            if not same_column(a[column], b[column], numeric):
                problems.append(f"{name}: feature {column} differs")
    return problems


def same_column(x: pd.Series, y: pd.Series, numeric: bool) -> bool:
    """Two engines' column agrees: numbers within 1e-9 relative (summation order), text exactly."""
    import numpy as np
    import pandas as pd

    if not numeric:
        return bool((x.astype("string").fillna("\0") == y.astype("string").fillna("\0")).all())
    xv = pd.to_numeric(x).astype("float64").to_numpy()
    yv = pd.to_numeric(y).astype("float64").to_numpy()
    return bool(np.allclose(xv, yv, rtol=1e-9, atol=0, equal_nan=True))


def engine_line(engine: str, measurement: Measurement, peak_label: str = "") -> str:
    """One engine's figures as both benchmarks print them (a run, or the medians with "peak ")."""
    wall, peak, cpu = measurement
    return f"  {engine:<7} {wall:7.1f} s  {peak_label}{peak:6.2f} GiB  cpu {cpu:7.1f} s"


def medians(results: dict[str, list[Measurement]]) -> dict[str, Measurement]:
    """Each engine's median wall time, peak memory and CPU time over its runs."""
    return {
        engine: (
            statistics.median(m[0] for m in runs),
            statistics.median(m[1] for m in runs),
            statistics.median(m[2] for m in runs),
        )
        for engine, runs in results.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (this machine: 2 cores)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB's memory limit (default: half the RAM)")
    parser.add_argument("--engines", default="pandas,duckdb")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds of rest before each run")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.data, args.out, args.threads, args.memory_limit)
        return 0
    data = data_folder(args.rows)
    engines = args.engines.split(",")
    results: dict[str, list[Measurement]] = {e: [] for e in engines}
    with tempfile.TemporaryDirectory(prefix="prepare-bench-") as tmp:
        for _ in range(args.runs):
            for engine in engines:
                time.sleep(args.settle)
                results[engine].append(
                    measured(engine, data, Path(tmp) / engine, args.threads, args.memory_limit)
                )
                print(engine_line(engine, results[engine][-1]), file=sys.stderr)
        problems = same_answer(Path(tmp) / "pandas", Path(tmp) / "duckdb") if len(engines) == 2 else []
    median = medians(results)
    limit = args.memory_limit or "half the RAM"
    print(
        f"preparation, {args.rows:,} merchants, median of {args.runs} runs, "
        f"DuckDB threads {args.threads}, memory limit {limit}, {args.settle:g} s of rest before each run"
    )
    for engine, figures in median.items():
        print(engine_line(engine, figures, "peak "))
    if len(engines) == 2:
        (ps, pm, pc), (ds, dm, dc) = median["pandas"], median["duckdb"]
        ratios = f"time {ds / ps:.3f} (target <= 0.2), peak memory {dm / pm:.3f} (target <= 0.25)"
        ratios += f", CPU time {dc / pc:.3f}"
        print(f"  ratio duckdb/pandas: {ratios}")
        print("  same answer: " + ("yes" if not problems else "NO\n    " + "\n    ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
