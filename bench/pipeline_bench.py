"""End-to-end local pipeline benchmark: a first run and a cached re-run, per data size.

    .venv/bin/python bench/pipeline_bench.py [--rows 100000,1000000] [--runs 3]

Each run is `python -m workflow.demo` in a fresh run folder (so data generation and
every step run), then the same command again in that folder (every step cached).  Prints the
median wall time of each and the ratio cached / first (target: <= 0.1), plus per-step times of
the last first run.  Targets from the issue: `make demo` (100k rows, after set-up) <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def timed_demo(root: Path, rows: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "workflow.demo", "--rows", str(rows), "--root", str(root)],
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def step_seconds(root: Path) -> dict[str, float]:
    executions = sorted((root / "executions").glob("*/execution.json"))
    first = json.loads(executions[0].read_text())
    return {name: step["seconds"] for name, step in first["steps"].items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="100000", help="comma-separated merchant counts")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for rows in (int(r) for r in args.rows.split(",")):
        firsts, cached = [], []
        steps: dict[str, float] = {}
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
                root = Path(tmp)
                firsts.append(timed_demo(root, rows))
                cached.append(timed_demo(root, rows))
                steps = step_seconds(root)
        first, again = statistics.median(firsts), statistics.median(cached)
        print(
            f"{rows:>9,} rows: first run median {first:6.1f} s, cached re-run median {again:5.1f} s, "
            f"ratio {again / first:.3f} (runs={args.runs})"
        )
        print(
            "           steps of the last first run: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
