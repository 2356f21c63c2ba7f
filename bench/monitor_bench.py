"""Monitoring speed and memory: the monitor's statistics and drift against one numpy pass.

    python bench/monitor_bench.py [--rows 1000000] [--features 20] [--runs 3]
    python bench/monitor_bench.py --capture-rows 10000000   # memory: stream 10M capture lines

Speed (the issue's measure): a 1M-row baseline and 1M current rows x 20 numeric features,
in memory.  Baseline figures are built as preprocessing builds statistics.json.  Timed:

- numpy pass: per feature, mean, std, min, max and a 10-bin histogram of the current window,
  the least any drift check has to compute (one pass over the data);
- monitor: what the monitor step does per feature for the same window: streamed in 50k-row
  chunks into the quantile sketch, the PSI bin counts and running sums, then PSI, KS
  (statistic and p-value) and the verdict.

Runs alternate, medians are quoted, the ratio is monitor / numpy pass (target <= 3x).

Memory: `--capture-rows N` writes N captured records as SageMaker data-capture JSON Lines
into a named pipe (nothing on disk) and runs the monitor step's reader and checks over it,
then prints the peak resident memory (target: 10M rows within 2 GB).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline_steps.common.baseline import _numerical  # noqa: E402
from pipeline_steps.monitor.drift import NumericDrift  # noqa: E402
from pipeline_steps.monitor.sketch import BaselineDistribution  # noqa: E402

CHUNK = 50_000


def data(rows: int, features: int, seed: int, shift: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((rows, features), order="F")  # columns contiguous, as pandas hands them over
    for j in range(features):
        if j % 2:
            out[:, j] = rng.normal(shift * (j % 3), 1.0 + 0.1 * (j % 4), rows)
        else:
            out[:, j] = np.floor(rng.gamma(2.0, 3.0 + shift, rows))
    return out


def numpy_pass(current: np.ndarray) -> float:
    total = 0.0
    for j in range(current.shape[1]):
        col = current[:, j]
        total += col.mean() + col.std() + col.min() + col.max() + np.histogram(col, bins=10)[0][0]
    return total


def monitor_pass(baselines: list[BaselineDistribution], current: np.ndarray) -> int:
    accs = [NumericDrift(f"f{j}", b, 0) for j, b in enumerate(baselines)]
    for start in range(0, len(current), CHUNK):
        block = current[start : start + CHUNK]
        for j, acc in enumerate(accs):
            acc.add(block[:, j])
    return sum(acc.result(0.2, 0.1)["drifted"] for acc in accs)


def speed(args: argparse.Namespace) -> None:
    reference = data(args.rows, args.features, 1, 0.0)
    current = data(args.rows, args.features, 2, 0.15)
    baselines = [
        BaselineDistribution.from_statistics(_numerical(reference[:, j], 0)) for j in range(args.features)
    ]
    del reference
    bare, mon = [], []
    drifted = 0
    for _ in range(args.runs):
        t = time.perf_counter()
        numpy_pass(current)
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        drifted = monitor_pass(baselines, current)
        mon.append(time.perf_counter() - t)
    b, m = statistics.median(bare), statistics.median(mon)
    print(f"{args.rows:,} rows x {args.features} features, {args.runs} runs (medians)")
    print(f"  numpy pass            {b:7.3f} s")
    print(f"  monitor stats + drift {m:7.3f} s   ({drifted} features drifted)")
    print(f"  ratio                 {m / b:7.2f}x  (target <= 3x)")


def memory(rows: int) -> None:
    import json

    from pipeline_steps.common import baseline as bl
    from pipeline_steps.common.feature_spec import load_spec
    from pipeline_steps.monitor.run import Inputs, Settings, monitor
    from workflow.datasets.merchant_credit import generate
    from workflow.monitoring.capture_files import capture_line, csv_records

    spec = load_spec(REPO / "workflow" / "specs" / "merchant_credit.yaml")
    from pipeline_steps.common.transform import add_derived

    sample, _ = generate(20_000, 3)
    from workflow.local_runner.local_values import LOCAL_RAW_BUCKET  # noqa: F401  (import cost parity)

    aggregates = {a: np.random.default_rng(4).gamma(2.0, 100.0, len(sample)) for a in spec.aggregate_names}
    for name, values in aggregates.items():
        sample[name] = values
    add_derived(sample, spec)
    stats = bl.statistics(sample, spec)
    records = csv_records(sample, spec)
    folder = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    pipe = folder / "capture.jsonl"
    os.mkfifo(pipe)
    start = datetime(2026, 11, 30)

    def writer() -> None:
        with open(pipe, "w") as handle:
            for i in range(rows):
                handle.write(
                    capture_line(
                        records[i % len(records)],
                        0.1,
                        event_id=f"e{i}",
                        inference_id=f"i{i}",
                        when=start + timedelta(seconds=i // 1000),
                    )
                    + "\n"
                )

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    t = time.perf_counter()
    summary = monitor(
        Inputs(
            spec=spec,
            statistics=stats,
            constraints=bl.constraints(stats, spec),
            capture_files=[pipe],
            evaluation={"model": {"threshold": 0.5}},
        ),
        Settings(endpoint="bench"),
        folder / "out",
    )
    seconds = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"records": summary["records"], "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb)}
        )
    )
    print(f"  {summary['records']:,} captured records streamed in {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--capture-rows", type=int, help="memory run over this many capture lines instead")
    args = parser.parse_args()
    if args.capture_rows:
        memory(args.capture_rows)
    else:
        speed(args)


if __name__ == "__main__":
    main()
