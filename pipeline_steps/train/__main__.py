"""Training step entry point: `python -m pipeline_steps.train [train]`.

SageMaker runs `<image> train`; the leading `train` argument is accepted and ignored.  Reads
`$OPT_ML_ROOT/input/config/*.json` and the channels `train`, `validation` and `spec`; writes
`$OPT_ML_ROOT/model/`.  On failure (or SIGTERM) the reason goes to
`$OPT_ML_ROOT/output/failure` and the exit code is non-zero.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from pipeline_steps.common.feature_spec import SpecError
from pipeline_steps.common.model_io import ModelError
from pipeline_steps.train.config import ConfigError, Paths, load_cluster
from pipeline_steps.train.data import DataError
from pipeline_steps.train.hyperparameters import HyperparameterError
from pipeline_steps.train.trainer import StopRequested, run

EXIT_FAILURE = 1
EXIT_SIGTERM = 143  # 128 + SIGTERM
_EXPECTED = (ConfigError, DataError, HyperparameterError, SpecError, ModelError)
_MAX_REASON = 1024  # SageMaker keeps the first 1 KB of the failure reason


def write_failure(paths: Paths, reason: str) -> None:
    print(f"training failed: {reason}", file=sys.stderr)
    try:
        paths.output.mkdir(parents=True, exist_ok=True)
        paths.failure.write_text(reason[:_MAX_REASON])
    except OSError as err:
        print(f"cannot write {paths.failure}: {err}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "train":
        args = args[1:]
    paths = Paths.from_env()
    if args:
        write_failure(paths, f"unexpected arguments {args}: configure the step with hyperparameters")
        return EXIT_FAILURE

    stop_flag = threading.Event()
    installed, previous = False, None
    try:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop_flag.set())
        installed = True
    except ValueError:  # not the main thread (in-process callers): no handler
        pass
    try:
        cluster = load_cluster(paths)
        run(paths, cluster, stop_flag)
        return 0
    except StopRequested as err:
        write_failure(paths, str(err))
        return EXIT_SIGTERM
    except _EXPECTED as err:
        write_failure(paths, str(err))
        return EXIT_FAILURE
    except Exception as err:  # noqa: BLE001 - the reason must reach SageMaker
        traceback.print_exc()
        write_failure(paths, f"internal error: {type(err).__name__}: {err}")
        return EXIT_FAILURE
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
