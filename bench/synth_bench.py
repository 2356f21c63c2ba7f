"""Synth benchmark: the full app (every environment, the delivery pipeline, cdk-nag on) against
an empty CDK app, both synthesized in this run with the same python, jsii and node.

    PATH=.venv/bin:$PATH .venv/bin/python bench/synth_bench.py [--runs N]

Each run is a fresh process (`python -c ...`), as `cdk synth` runs app.py, so the figures include
jsii start-up.  Prints the median of each and the ratio (target: <= 3x).
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

EMPTY_APP = "import aws_cdk as cdk; app = cdk.App(outdir={outdir!r}); cdk.Stack(app, 'Empty'); app.synth()"
FULL_APP = (
    "import json, aws_cdk as cdk, app as project;"
    "ctx = json.load(open('cdk.json'))['context'];"
    "a = cdk.App(outdir={outdir!r}, context=ctx);"
    "project.build_app(project.load_config(), target='pipeline', app=a); a.synth()"
)


def time_once(code: str) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code.format(outdir=outdir)],
            cwd=REPO_ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each app (default 5)")
    args = parser.parse_args()
    empty, full = [], []
    for _ in range(args.runs):  # interleaved, so drift in machine load hits both alike
        empty.append(time_once(EMPTY_APP))
        full.append(time_once(FULL_APP))
    e, f = statistics.median(empty), statistics.median(full)
    print(f"empty app synth:  median {e:6.2f} s over {args.runs} runs")
    print(f"full app synth:   median {f:6.2f} s over {args.runs} runs (all environments, pipeline, cdk-nag)")
    print(f"ratio full/empty: {f / e:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
