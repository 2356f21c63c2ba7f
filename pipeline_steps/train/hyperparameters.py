"""Typed schema for the training step's hyperparameters.

SageMaker passes every hyperparameter as a string (`hyperparameters.json`), so each one is
parsed here with its own type and range; an unknown name or a bad value fails with a message
that names it.  Keys SageMaker itself adds (`sagemaker_*`, `_tuning_objective_metric`) are
ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

EVAL_METRICS = ("auc", "logloss")
# Metrics where a larger value is better (used for early stopping direction).
MAXIMIZE = {"auc": True, "logloss": False}
_IGNORED_PREFIXES = ("sagemaker_", "_tuning_objective_metric")


class HyperparameterError(ValueError):
    """A hyperparameter is unknown or has a bad value; the message names it."""


@dataclass(frozen=True)
class Hyperparameters:
    num_round: int = 200
    max_depth: int = 6
    eta: float = 0.1
    subsample: float = 1.0
    colsample_bytree: float = 1.0
    min_child_weight: float = 1.0
    gamma: float = 0.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 20  # 0 turns early stopping off
    scale_pos_weight: float | str = 1.0  # a positive number, or "auto" = negatives / positives
    seed: int = 0
    nthread: int = 0  # 0 = every core
    eval_metric: str = "auc"
    checkpoint_interval: int = 10  # rounds between checkpoints (only when checkpointing is on)

    def xgb_params(self, scale_pos_weight: float) -> dict[str, Any]:
        """The `xgboost.train` params (scale_pos_weight already resolved)."""
        params: dict[str, Any] = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "eval_metric": self.eval_metric,
            "max_depth": self.max_depth,
            "eta": self.eta,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "gamma": self.gamma,
            "lambda": self.reg_lambda,
            "scale_pos_weight": scale_pos_weight,
            "seed": self.seed,
        }
        if self.nthread > 0:
            params["nthread"] = self.nthread
        return params

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"expected an integer, got {text!r}")
        value = int(value)
        _check_range(value, lo, hi)
        return value

    return parse


def _float(
    lo: float | None = None, hi: float | None = None, *, lo_open: bool = False
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {text!r}")
        if lo_open and lo is not None and value <= lo:
            raise ValueError(f"{value} must be greater than {lo}")
        _check_range(value, lo, hi)
        return value

    return parse


def _check_range(value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise ValueError(f"{value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ValueError(f"{value} is above the maximum {hi}")


def _scale_pos_weight(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _float(0.0, lo_open=True)(text)
    except ValueError as err:
        raise ValueError(f"{err} (or 'auto')") from None


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(f"{text!r} is not one of {list(options)}")
        return value

    return parse


_PARSERS: dict[str, Callable[[str], Any]] = {
    "num_round": _int(1, 100_000),
    "max_depth": _int(0, 64),
    "eta": _float(0.0, 1.0, lo_open=True),
    "subsample": _float(0.0, 1.0, lo_open=True),
    "colsample_bytree": _float(0.0, 1.0, lo_open=True),
    "min_child_weight": _float(0.0),
    "gamma": _float(0.0),
    "reg_lambda": _float(0.0),
    "early_stopping_rounds": _int(0),
    "scale_pos_weight": _scale_pos_weight,
    "seed": _int(0, 2**31 - 1),
    "nthread": _int(0, 1024),
    "eval_metric": _choice(EVAL_METRICS),
    "checkpoint_interval": _int(1),
}
assert set(_PARSERS) == {f.name for f in fields(Hyperparameters)}


def parse_hyperparameters(raw: Mapping[str, Any]) -> Hyperparameters:
    """SageMaker's string mapping -> Hyperparameters (defaults for names not given)."""
    if not isinstance(raw, Mapping):
        raise HyperparameterError(f"hyperparameters: expected a JSON object, got {type(raw).__name__}")
    values: dict[str, Any] = {}
    unknown = []
    for name, value in raw.items():
        if name.startswith(_IGNORED_PREFIXES):
            continue
        parser = _PARSERS.get(name)
        if parser is None:
            unknown.append(name)
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise HyperparameterError(f"hyperparameter '{name}': expected a string, got {value!r}")
        try:
            values[name] = parser(str(value))
        except ValueError as err:
            raise HyperparameterError(f"hyperparameter '{name}': {err}") from None
    if unknown:
        raise HyperparameterError(f"unknown hyperparameter(s) {sorted(unknown)}; known: {sorted(_PARSERS)}")
    return Hyperparameters(**values)
