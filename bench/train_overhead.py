"""Overhead of the training step against a bare `xgboost.train` on the same data.

    python bench/train_overhead.py [--rows 100000] [--runs 5] [--rounds 200] [--subprocess]

Both sides train with the same params and number of rounds on the same generated data
(`tests/train_eval_helpers.make_feature_frame`, 100k train rows + 20k validation rows):

- bare: the float32 matrices are already in memory; timed = `xgboost.DMatrix` for train and
  validation + `xgboost.train` with the validation set in `evals`.
- step: the training step's `main(["train"])` called in-process; timed = everything it does
  (read the JSON configs and the spec, read the Parquet channels, `transform.model_matrix`,
  DMatrix, train, write the model dir).  With `--subprocess` the step is also timed as
  `python -m pipeline_steps.train train`, which adds interpreter start-up and imports.

Runs alternate (bare, step, bare, step, ...) so background load hits both; medians are
quoted and the ratio is step / bare (target <= 1.2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import train_eval_helpers as h  # noqa: E402 - after sys.path: bench scripts run as plain files
import xgboost as xgb  # noqa: E402 - after sys.path: bench scripts run as plain files

from pipeline_steps.common.transform import label_vector, model_matrix  # noqa: E402 - after sys.path: bench scripts run as plain files
from pipeline_steps.train.__main__ import main as train_main  # noqa: E402 - after sys.path: bench scripts run as plain files
from pipeline_steps.train.hyperparameters import parse_hyperparameters  # noqa: E402 - after sys.path: bench scripts run as plain files


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--max-depth", type=int, default=6)
    p.add_argument("--nthread", type=int, default=0, help="0 = every core (the step's default)")
    p.add_argument("--subprocess", action="store_true", help="also time the step as a subprocess")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    spec = h.spec()
    train = h.make_feature_frame(spec, args.rows, seed=101)
    valid = h.make_feature_frame(spec, max(args.rows // 5, 100), seed=102)
    hp_raw = {
        "num_round": str(args.rounds),
        "max_depth": str(args.max_depth),
        "eta": "0.1",
        "early_stopping_rounds": "0",
        "nthread": str(args.nthread),
        "seed": "1",
    }
    hp = parse_hyperparameters(hp_raw)
    params = hp.xgb_params(float(hp.scale_pos_weight))
    Xt, yt = model_matrix(train, spec), label_vector(train[spec.label], spec)
    Xv, yv = model_matrix(valid, spec), label_vector(valid[spec.label], spec)
    nthread = args.nthread if args.nthread > 0 else -1

    def bare() -> xgb.Booster:
        dtrain = xgb.DMatrix(Xt, label=yt, feature_names=spec.model_features, nthread=nthread)
        dvalid = xgb.DMatrix(Xv, label=yv, feature_names=spec.model_features, nthread=nthread)
        return xgb.train(
            params, dtrain, num_boost_round=args.rounds, evals=[(dvalid, "validation")], verbose_eval=False
        )

    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        root = h.make_training_root(Path(tmp), train, valid, hp_raw)
        os.environ["OPT_ML_ROOT"] = str(root)
        for key in [k for k in os.environ if k.startswith("SM_")]:
            del os.environ[key]

        def step() -> None:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                assert train_main(["train"]) == 0, (root / "output" / "failure").read_text()

        def step_subprocess() -> None:
            subprocess.run(
                [sys.executable, "-m", "pipeline_steps.train", "train"],
                cwd=REPO,
                env=h.step_env(root),
                check=True,
                stdout=subprocess.DEVNULL,
            )

        timings: dict[str, list[float]] = {"bare": [], "step": [], "step_subprocess": []}
        sides = [("bare", bare), ("step", step)] + (
            [("step_subprocess", step_subprocess)] if args.subprocess else []
        )
        bare(), step()  # warm-up: imports, page cache, thread pools
        load_before = os.getloadavg()[0]
        for _ in range(args.runs):
            for name, fn in sides:
                t0 = time.perf_counter()
                fn()
                timings[name].append(time.perf_counter() - t0)
        load_after = os.getloadavg()[0]
        same_model = bytes(bare().save_raw("json")) == (root / "model" / "xgboost-model.json").read_bytes()
        meta = json.loads((root / "model" / "model_meta.json").read_text())

    med = {k: statistics.median(v) for k, v in timings.items() if v}
    print(
        f"data: {args.rows} train rows, {len(valid)} validation rows, {len(spec.model_features)} features; "
        f"{args.rounds} rounds, max_depth {args.max_depth}, "
        f"nthread {args.nthread or 'all'} ({os.cpu_count()} cpus)"
    )
    print(f"runs: {args.runs} each, alternating; load average {load_before:.2f} -> {load_after:.2f}")
    for name, value in med.items():
        runs = ", ".join(f"{t:.3f}" for t in timings[name])
        print(f"  {name:16s} median {value:7.3f} s   [{runs}]")
    print(f"ratio step / bare (in-process): {med['step'] / med['bare']:.3f}  (target <= 1.2)")
    if "step_subprocess" in med:
        print(f"ratio step / bare (subprocess): {med['step_subprocess'] / med['bare']:.3f}")
    print(f"step model identical to the bare model: {same_model}; trees {meta['trees_in_model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
