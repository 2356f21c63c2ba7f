"""Training step entry point: `python -m pipeline_steps.train [train]`.

SageMaker runs `<image> train`; the leading `train` argument is accepted and ignored.  Reads
`$OPT_ML_ROOT/input/config/*.json` and the channels `train`, `validation` and `spec`; writes
`$OPT_ML_ROOT/model/`.  On failure (or SIGTERM) the reason goes to
`$OPT_ML_ROOT/output/failure`; the exit code is 2 for input the step cannot use (one message,
no traceback unless `--debug` is given), 143 after SIGTERM, 1 for an internal error.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from pipeline_steps.common.contract import EXIT_INPUT, EXIT_INTERNAL, EXIT_SIGTERM, InputError, write_failure
from pipeline_steps.train.config import Paths, load_cluster
from pipeline_steps.train.trainer import StopRequested, run

STEP = "training"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "train":
        args = args[1:]
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    paths = Paths.from_env()
    if args:
        reason = (
            f"unexpected arguments {args}: expected only 'train' (and --debug); "
            "configure the step with hyperparameters"
        )
        write_failure(STEP, reason, paths.failure)
        return EXIT_INPUT

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
        write_failure(STEP, str(err), paths.failure)
        return EXIT_SIGTERM
    except InputError as err:
        if debug:
            traceback.print_exc()
        write_failure(STEP, str(err), paths.failure)
        return EXIT_INPUT
    except Exception as err:  # the reason must reach SageMaker, and the traceback the log
        traceback.print_exc()
        write_failure(STEP, f"internal error: {type(err).__name__}: {err}", paths.failure)
        return EXIT_INTERNAL
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
