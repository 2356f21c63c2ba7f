"""Review benchmark: `python -m review --base HEAD` (two `cdk synth` runs in parallel, one of them
in a temporary git worktree, then the diff engine and the report) against one `cdk synth` of the
working tree, both measured in this run; and the report alone on two saved assemblies.

    .venv/bin/python bench/review_bench.py [--runs N]

Prints medians and the ratio review / synth (target: <= 2.5x: the two synths share the cores).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from review.synth import synth_command  # noqa: E402  (after the sys.path line: run as a script)


def timed(cmd: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    synth, review, report = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved.out"
        cmd, env = synth_command(REPO_ROOT, saved, REPO_ROOT)
        timed(cmd, env)  # warm caches (definition cache, pip's bytecode) before measuring
        for i in range(args.runs):
            cmd, env = synth_command(REPO_ROOT, Path(tmp) / f"synth-{i}", REPO_ROOT)
            synth.append(timed(cmd, env))
            review.append(timed([sys.executable, "-m", "review", "--base", "HEAD"], ok=(0, 2)))
            report.append(
                timed(
                    [
                        sys.executable,
                        "-m",
                        "review",
                        "--base-assembly",
                        str(saved),
                        "--head-assembly",
                        str(saved),
                    ],
                    ok=(0, 2),
                )
            )
    s, r, p = (statistics.median(x) for x in (synth, review, report))
    print(f"cdk synth (working tree)        median {s:6.1f} s  over {args.runs} runs")
    print(f"make review (base HEAD)         median {r:6.1f} s  {r / s:.2f}x synth")
    print(f"report on two saved assemblies  median {p:6.1f} s  {p / s:.2f}x synth")


if __name__ == "__main__":
    main()
