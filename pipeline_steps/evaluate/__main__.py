"""Evaluation step entry point: `python -m pipeline_steps.evaluate [--model ...]`.

Scores the test split with the trained model, a logistic-regression baseline fitted on the
train split, and the train base rate; writes `evaluation.json` (atomically), PNG plots and
`report.html` to `--output`.  Bad input -> one message naming it, also written to
`$OPT_ML_ROOT/output/message`, exit code 2 (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common import baseline as data_baseline
from pipeline_steps.common.atomic import write_json, write_text
from pipeline_steps.common.attribution import monitoring_baseline
from pipeline_steps.common.contract import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    ConfigError,
    DataError,
    InputError,
    opt_ml_root,
    processing_message_path,
    write_failure,
)
from pipeline_steps.common.feature_spec import FeatureSpec, load_spec
from pipeline_steps.common.model_io import load_model_dir, model_threshold, resolve_model_dir
from pipeline_steps.common.splits import parquet_files, read_split_table
from pipeline_steps.common.transform import label_vector, model_matrix

SINGLE_ROW_SAMPLES = 50
BATCH_REPEATS = 5
# A scorer: a frame with the spec's columns -> P(positive) per row.
Predict = Callable[[pd.DataFrame], np.ndarray]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    proc = opt_ml_root() / "processing"
    p = argparse.ArgumentParser(prog="python -m pipeline_steps.evaluate", description=__doc__)
    p.add_argument(
        "--model",
        type=Path,
        default=proc / "input" / "model",
        help="folder with model.tar.gz, the archive itself, or an extracted model folder",
    )
    p.add_argument("--test", type=Path, default=proc / "input" / "test")
    p.add_argument("--train", type=Path, default=proc / "input" / "train")
    p.add_argument(
        "--feature-spec",
        type=Path,
        default=None,
        help=f"feature spec folder or file (default {proc / 'input' / 'spec'}, "
        "checked against the model's spec if present)",
    )
    p.add_argument("--output", type=Path, default=proc / "output" / "evaluation")
    p.add_argument(
        "--threshold",
        default="model",
        help="decision threshold in (0, 1), or 'model' for the one training chose on validation",
    )
    p.add_argument(
        "--latency-samples",
        type=int,
        # A string default goes through `type` too, so a bad value is named like a bad argument.
        default=os.environ.get("EVALUATE_LATENCY_SAMPLES", str(SINGLE_ROW_SAMPLES)),
        help="timed single-row predictions per scorer (p50/p95; default $EVALUATE_LATENCY_SAMPLES, "
        f"else {SINGLE_ROW_SAMPLES}: a whole local run can time fewer)",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of an input error too")
    args = p.parse_args(argv)
    if args.threshold != "model":
        try:
            args.threshold = float(args.threshold)
        except ValueError:
            p.error(f"--threshold {args.threshold!r}: expected a number in (0, 1) or 'model'")
        if not 0.0 < args.threshold < 1.0:
            p.error(f"--threshold {args.threshold} must be strictly between 0 and 1")
    args.spec_explicit = args.feature_spec is not None
    if args.feature_spec is None:
        args.feature_spec = proc / "input" / "spec"
    return args


def _read(folder: Path, spec: FeatureSpec, what: str) -> tuple[pd.DataFrame, np.ndarray]:
    table = read_split_table(folder, [spec.label] + spec.model_features, what)
    if table.num_rows == 0:
        raise DataError(f"{what}: no rows in {folder}")
    frame = table.to_pandas()
    y = label_vector(frame[spec.label], spec).astype(np.float64)
    positives = int(y.sum())
    if positives in (0, len(y)):
        raise DataError(
            f"{what}: label '{spec.label}' has one class only ({positives} positives in {len(y)} rows); "
            "AUC and the baseline need both classes"
        )
    return frame, y


def _check_spec(args: argparse.Namespace, model_spec: FeatureSpec) -> None:
    path = args.feature_spec
    if not path.exists():
        if args.spec_explicit:
            raise ConfigError(f"--feature-spec: {path} does not exist")
        return
    given = load_spec(path)
    if given.to_json() != model_spec.to_json():
        raise ConfigError(
            f"--feature-spec: the spec in {path} differs from the model's feature_spec.yaml "
            f"(digest {given.digest[:12]} vs {model_spec.digest[:12]}); "
            "evaluate with the spec the model was trained on"
        )


def _latency(predict_frame: Predict, frame: pd.DataFrame, samples: int) -> dict[str, Any]:
    """Timed through the serving path: a frame in, model_matrix, predict."""
    from pipeline_steps.evaluate.metrics import time_batches, time_single_rows

    n = len(frame)
    singles = [frame.iloc[[i]] for i in np.linspace(0, n - 1, min(max(samples, 0), n)).astype(int)]
    return {
        "latency_ms_per_row": time_batches(lambda: predict_frame(frame), n, BATCH_REPEATS),
        "latency_ms_single_row": time_single_rows(predict_frame, singles),
    }


def _data_summary(
    spec: FeatureSpec, model_meta: dict[str, Any], y_test: np.ndarray, y_train: np.ndarray
) -> dict[str, Any]:
    """What was scored and with which model: rows and positives per split, spec, training run."""
    positives = int(y_test.sum())
    return {
        "rows": len(y_test),
        "positives": positives,
        "feature_spec_digest": spec.digest,
        "spec_name": spec.name,
        "data": {
            "test": {"rows": len(y_test), "positives": positives, "positive_rate": positives / len(y_test)},
            "train": {
                "rows": len(y_train),
                "positives": int(y_train.sum()),
                "positive_rate": float(y_train.mean()),
            },
        },
        "model_meta": {
            k: model_meta.get(k) for k in ("best_iteration", "best_score", "eval_metric", "xgboost_version")
        },
    }


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from pipeline_steps.evaluate.baseline import fit_logistic
    from pipeline_steps.evaluate.metrics import binary_metrics, registry_metrics
    from pipeline_steps.evaluate.report import write_html, write_plots

    with tempfile.TemporaryDirectory(prefix="model-") as work:
        model = load_model_dir(resolve_model_dir(args.model, Path(work)))
    spec = model.spec
    _check_spec(args, spec)
    test, y_test = _read(args.test, spec, "test split")
    train, y_train = _read(args.train, spec, "train split")

    p_model = model.predict_proba(test)
    baseline = fit_logistic(model_matrix(train, spec), y_train)

    def predict_baseline(frame: pd.DataFrame) -> np.ndarray:
        return baseline.predict_proba(model_matrix(frame, spec))[:, 1]

    base_rate = float(y_train.mean())

    def predict_base_rate(frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), base_rate)

    p_baseline = predict_baseline(test)
    p_base_rate = predict_base_rate(test)
    t = model_threshold(model.meta) if args.threshold == "model" else args.threshold
    result: dict[str, Any] = {}
    for key, p, predict in (
        ("model", p_model, model.predict_proba),
        ("baseline", p_baseline, predict_baseline),
        ("base_rate", p_base_rate, predict_base_rate),
    ):
        result[key] = binary_metrics(y_test, p, t) | _latency(predict, test, args.latency_samples)
    result["baseline"]["kind"] = "logistic_regression(median impute, standard scale)"
    result["base_rate"]["kind"] = "constant train positive rate"
    result["base_rate"]["value"] = base_rate
    result.update(_data_summary(spec, model.meta, y_test, y_train))
    result.update(registry_metrics(y_test, p_model, t))
    # the monitor's reference for prediction and attribution drift
    result["monitoring_baseline"] = monitoring_baseline(
        model.booster, model_matrix(test, spec), p_model, spec.model_features
    )

    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    scores = {"model": p_model, "baseline": p_baseline}
    write_plots(out, y_test, scores, {k: result[k] for k in scores})
    write_html(
        out, result, {"model": "XGBoost model", "baseline": "Logistic regression", "base_rate": "Base rate"}
    )
    # The data-quality baseline the model is registered with: from the whole train split, so it is
    # the same whether one or several preprocessing instances wrote the split's parts.
    stats = data_baseline.merge(
        [data_baseline.partial_from_file(f, spec) for f in parquet_files(args.train, "train")], spec
    )
    write_json(out / "statistics.json", stats, sort_keys=False)
    write_json(out / "constraints.json", data_baseline.constraints(stats, spec), sort_keys=False)
    text = json.dumps(result, indent=2, allow_nan=False)
    write_text(out / "evaluation.json", text + "\n")  # written last, atomically: its presence means done
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = evaluate(args)
    except InputError as err:
        if args.debug:
            traceback.print_exc()
        write_failure("evaluation", str(err), processing_message_path())
        return EXIT_INPUT
    except Exception as err:  # the reason must reach SageMaker, and the traceback the log
        traceback.print_exc()
        write_failure("evaluation", f"internal error: {type(err).__name__}: {err}", processing_message_path())
        return EXIT_INTERNAL
    print(
        f"model AUC {result['model']['auc']:.4f}, baseline AUC {result['baseline']['auc']:.4f}, "
        f"{result['rows']} test rows -> {args.output / 'evaluation.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
