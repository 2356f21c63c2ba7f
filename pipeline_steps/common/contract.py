"""The SageMaker container contract every step shares: paths, failure messages, exit codes, errors.

- Paths: every default path is under `$OPT_ML_ROOT` (default `/opt/ml`), so the local runner
  points a step at its own folder with one variable.
- Failure message: a processing job's reason goes to `output/message`, a training job's to
  `output/failure`; SageMaker keeps only the first 1,024 characters of either.
- Exit codes: 0 done; 1 an internal error (a bug: traceback printed); 2 input the step cannot
  use (one clear message naming the file or field and what is allowed); 143 stopped by SIGTERM.
- Errors: `InputError` is the one base of every user-facing error; `DataError` (data files,
  splits, model artifacts) and `ConfigError` (configuration, specs, hyperparameters,
  arguments) are its two kinds.  Anything else is internal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

OPT_ML = "/opt/ml"
OPT_ML_ROOT = "OPT_ML_ROOT"  # the environment variable that moves every default path

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_SIGTERM = 143  # 128 + SIGTERM, as the shell reports it

# SageMaker keeps the first 1 KB of a job's failure reason (DescribeTrainingJob FailureReason).
MAX_FAILURE_MESSAGE = 1024


class InputError(ValueError):
    """Input that cannot be used as given; the message names the file or field and what is allowed."""


class DataError(InputError):
    """A data file, split or model artifact is missing, empty or malformed."""


class ConfigError(InputError):
    """A configuration file, spec, hyperparameter or argument has a value that is not allowed."""


def opt_ml_root(env: Mapping[str, str] | None = None) -> Path:
    """`$OPT_ML_ROOT`, or SageMaker's `/opt/ml`."""
    return Path((os.environ if env is None else env).get(OPT_ML_ROOT, OPT_ML))


def processing_message_path(root: Path | None = None) -> Path:
    """Where a processing job writes its failure reason."""
    return (root or opt_ml_root()) / "output" / "message"


def training_failure_path(output: Path | None = None) -> Path:
    """Where a training job writes its failure reason (`output` is the job's output folder)."""
    return (output or opt_ml_root() / "output") / "failure"


def write_failure(step: str, message: str, path: Path) -> None:
    """Prints `<step> failed: message` and writes SageMaker's failure file, cut to its limit.

    Never raises: the reason must not be lost to a second error while it is being reported."""
    print(f"{step} failed: {message}", file=sys.stderr)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message[:MAX_FAILURE_MESSAGE])
    except OSError as err:
        print(f"cannot write {path}: {err}", file=sys.stderr)
