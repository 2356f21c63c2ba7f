"""Serving latency: the HTTP server against in-process scoring of the same rows, same run.

    python bench/serve_latency.py [--repeats 50]

Trains a small model on synthetic rows built from the spec, starts the real server on a free
port, and prints median milliseconds per request for several batch sizes and both content
types, next to the baseline (records_to_frame + model_matrix + booster in this process) and
their ratio.  On demand only; never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_steps.common import transform  # noqa: E402 - after sys.path: bench scripts run as plain files
from pipeline_steps.common.feature_spec import load_spec  # noqa: E402 - after sys.path: bench scripts run as plain files
from pipeline_steps.serve import payload  # noqa: E402 - after sys.path: bench scripts run as plain files

SPEC_PATH = ROOT / "workflow" / "specs" / "merchant_credit.yaml"
SPEC = load_spec(SPEC_PATH)


def records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        row = {}
        for name in payload.csv_columns(SPEC):
            kind = SPEC.feature_type(name)
            if kind == "category":
                row[name] = rng.choice(SPEC.column(name).categories)
            elif kind == "boolean":
                row[name] = rng.random() < 0.5
            elif kind in ("integer", "number"):
                row[name] = rng.randint(0, 800)
            else:
                row[name] = f"m-{rng.randint(1, 99)}"
        out.append(row)
    return out


def build_model(directory: Path) -> xgb.Booster:
    rows = records(2000, 0)
    matrix = transform.model_matrix(transform.records_to_frame(rows, SPEC), SPEC)
    labels = (np.random.default_rng(0).random(len(rows)) < 0.2).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 5}
    booster = xgb.train(params, xgb.DMatrix(matrix, label=labels), 200)
    booster.save_model(str(directory / "xgboost-model.json"))
    booster.set_param({"nthread": 1})  # as the server does with one worker per core
    shutil.copy(SPEC_PATH, directory / "feature_spec.yaml")
    (directory / "model_meta.json").write_text(json.dumps({"feature_names": SPEC.model_features}))
    return booster


def median_ms(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        booster = build_model(Path(tmp))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "SM_MODEL_DIR": tmp,
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SERVE_HOST": "127.0.0.1",
            "PYTHONPATH": str(ROOT),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline_steps.serve"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(url + "/ping", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            print(f"{'request':<22}{'server ms':>10}{'in-process ms':>15}{'ratio':>8}")
            for n in (1, 100, 1000):
                rows = records(n, n)
                columns = payload.csv_columns(SPEC)
                bodies = {
                    "json": (json.dumps({"instances": rows}).encode(), "application/json"),
                    "csv": (
                        "".join(",".join(str(r[c]) for c in columns) + "\n" for r in rows).encode(),
                        "text/csv",
                    ),
                }

                def baseline(rows=rows):  # bound now: the loop moves on
                    frame = transform.records_to_frame(rows, SPEC)
                    booster.inplace_predict(transform.model_matrix(frame, SPEC))

                base = median_ms(baseline, args.repeats)
                for kind, (body, ctype) in bodies.items():

                    def call(body=body, ctype=ctype):
                        req = urllib.request.Request(url + "/invocations", body, {"Content-Type": ctype})
                        urllib.request.urlopen(req, timeout=30).read()

                    served = median_ms(call, args.repeats)
                    print(f"{f'{n} rows {kind}':<22}{served:>10.2f}{base:>15.2f}{served / base:>8.1f}")
            ping = median_ms(lambda: urllib.request.urlopen(url + "/ping", timeout=5).read(), args.repeats)
            print(f"{'GET /ping':<22}{ping:>10.2f}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
