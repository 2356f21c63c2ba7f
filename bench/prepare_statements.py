"""Where the DuckDB preprocess spends its time: wall and CPU time of each statement of one run.

    .venv/bin/python bench/prepare_statements.py [--rows 200000] [--memory-limit 1500MB] [--threads 2]

Runs the step (`pipeline_steps.preprocess.run.run`) once in this process on the benchmark's
merchant data (`prepare_engines.data_folder`, generated once), timing every table and query
the engine is asked for, and its Parquet writes (all outputs at once, side by side); CPU time is
this process's, all DuckDB threads included.  Prints the statements that took at least 0.05 s,
the total and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from prepare_engines import SPEC, data_folder  # noqa: E402 - bench/ is not a package

from pipeline_steps.preprocess.run import Config, run  # noqa: E402
from pipeline_steps.preprocess.sql.duckdb_engine import DuckDBEngine  # noqa: E402

Timing = tuple[float, float, str, str]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(method: str, log: list[Timing]) -> Callable[..., Any]:
    original = getattr(DuckDBEngine, method)

    def timed(self: DuckDBEngine, *args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), _cpu()
        out = original(self, *args, **kwargs)
        label = f"{len(args[0])} outputs" if method == "write_all" else str(args[0]).replace("\n", " ")
        log.append((time.perf_counter() - wall, _cpu() - cpu, method, label[:90]))
        return out

    return timed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--memory-limit", default="1500MB")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    data = data_folder(args.rows)
    log: list[Timing] = []
    for method in ("read_table", "table", "rows", "write_all"):
        setattr(DuckDBEngine, method, _timed(method, log))
    with tempfile.TemporaryDirectory(prefix="prepare-statements-") as tmp:
        wall, cpu = time.perf_counter(), _cpu()
        run(
            Config(
                spec=SPEC,
                entities=data / "entities",
                history=data / "history",
                output=Path(tmp) / "out",
                threads=args.threads,
                memory_limit=args.memory_limit,
                scratch=Path(tmp),
            )
        )
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    print(f"{'wall s':>7} {'cpu s':>7}  statement ({args.rows:,} merchants, {args.memory_limit})")
    for seconds, used, method, label in log:
        if seconds >= 0.05:
            print(f"{seconds:7.2f} {used:7.2f}  {method:<13} {label}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"{wall:7.2f} {cpu:7.2f}  total (peak RSS {peak:.2f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
