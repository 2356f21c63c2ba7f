"""Data generation side by side: the generator before issue 12 vs today's, in the same run.

    .venv/bin/python bench/datagen_bench.py [--rows 1000000] [--runs 3] [--workers 2]
    .venv/bin/python bench/datagen_bench.py --rows 10000000 --runs 1 --only new   # the 10M run

The baseline is the generator at BASELINE_REF (the last commit before the block-wise
generator), exported with `git archive` into a temporary folder and run from there.  Each run
is `python -m workflow.datasets --rows N --out DIR` in its own process: wall time, CPU time
(process and its workers), peak resident memory of the largest process (os.wait4) and of the
whole process tree (sampled from /proc every 0.1 s: the workers' memory adds up).  Prints
medians and the ratio new / baseline (issue 12's target: time <= 0.2), after checking that
both wrote the same tables: column names and types, and row counts within 2 %.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE_REF = "1a86a10a878359440c8276e75d4023c90d263873"
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(children)
        frontier += children
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def measured(cmd: list[str], cwd: Path) -> dict[str, float]:
    """Wall s, CPU s, peak RSS GiB of the largest process and of the process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env={**os.environ, "PYTHONPATH": str(cwd)}, stdout=subprocess.DEVNULL
    )
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return {
        "wall": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024 / 1024,  # KiB -> GiB
        "tree_rss": peak[0] / 1024**3,
    }


def baseline_tree(folder: Path) -> Path:
    """The code at BASELINE_REF (only what the generator imports)."""
    archive = subprocess.run(
        ["git", "archive", BASELINE_REF, "config", "pipeline_steps", "workflow"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    folder.mkdir()
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def shape(out: Path) -> dict[str, tuple[list[tuple[str, str]], int, int]]:
    """Per table: (column, type) pairs (large_string counted as string), rows, bytes on disk."""
    import pyarrow.parquet as pq

    found = {}
    for kind in ("entities", "history"):
        files = sorted((out / kind).glob("part-*.parquet"))
        schema = pq.read_schema(files[0])
        columns = [(f.name, str(f.type).replace("large_string", "string")) for f in schema]
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        found[kind] = (columns, rows, sum(f.stat().st_size for f in files))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=2, help="processes of the new generator (2 cores here)"
    )
    parser.add_argument("--only", choices=("new", "baseline"), help="run one generator only")
    parser.add_argument(
        "--tmp", help="folder for the generated data (default: the system's temporary folder)"
    )
    args = parser.parse_args()
    names = [args.only] if args.only else ["baseline", "new"]
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    shapes = {}
    with tempfile.TemporaryDirectory(prefix="datagen-bench-", dir=args.tmp) as tmp:
        code = {"new": REPO}
        if "baseline" in names:
            code["baseline"] = baseline_tree(Path(tmp) / "baseline-code")
        for _ in range(args.runs):
            for name in names:
                out = Path(tmp) / f"out-{name}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = [sys.executable, "-m", "workflow.datasets", "--rows", str(args.rows), "--out", str(out)]
                if name == "new":
                    cmd += ["--workers", str(args.workers)]
                results[name].append(measured(cmd, code[name]))
                r = results[name][-1]
                print(
                    f"  {name:<8} {r['wall']:7.1f} s  cpu {r['cpu']:7.1f} s  peak {r['rss']:5.2f} GiB"
                    f" (tree {r['tree_rss']:5.2f} GiB)",
                    file=sys.stderr,
                )
                shapes[name] = shape(out)
                shutil.rmtree(out, ignore_errors=True)
    print(
        f"data generation, {args.rows:,} merchants, median of {args.runs} runs,"
        f" new with {args.workers} workers"
    )
    median = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in results.items()}
    for name, m in median.items():
        _, h_rows, h_bytes = shapes[name]["history"]
        print(
            f"  {name:<8} {m['wall']:7.1f} s  cpu {m['cpu']:7.1f} s  peak {m['rss']:5.2f} GiB"
            f" (process tree {m['tree_rss']:5.2f} GiB)  history {h_rows:,} rows, {h_bytes / 1024**3:.2f} GiB"
        )
    if len(names) == 2:
        b, n = median["baseline"], median["new"]
        print(
            f"  ratio new/baseline: time {n['wall'] / b['wall']:.3f} (target <= 0.2),"
            f" cpu {n['cpu'] / b['cpu']:.3f},"
            f" peak memory {n['tree_rss'] / b['tree_rss']:.3f} (process tree)"
        )
        problems = []
        for kind in ("entities", "history"):
            (bc, br, _), (nc, nr, _) = shapes["baseline"][kind], shapes["new"][kind]
            if bc != nc:
                problems.append(f"{kind}: columns differ: {bc} vs {nc}")
            if abs(nr - br) > 0.02 * br:
                problems.append(f"{kind}: {nr:,} rows vs {br:,}")
        print("  same tables: " + ("yes" if not problems else "NO\n    " + "\n    ".join(problems)))
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
