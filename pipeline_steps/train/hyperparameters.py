"""The training step's hyperparameters, each declared once: type, range, default, tuning range.

As AWS's own XGBoost container does, one declaration per hyperparameter drives everything
derived from it: the parser of SageMaker's strings (`hyperparameters.json`), the values the
pipeline definition sets (`definition_hyperparameters`), the tuning job's ranges
(`tuning_ranges`) and each evaluation metric's direction (`METRICS`).  An unknown name or a bad
value fails with a message that names it and what is allowed.  Keys SageMaker itself adds
(`sagemaker_*`, `_tuning_objective_metric`) are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from pipeline_steps.common.contract import ConfigError

# Evaluation metric -> whether a larger value is better (early stopping and the tuning objective).
METRICS: dict[str, bool] = {"auc": True, "logloss": False}
_IGNORED_PREFIXES = ("sagemaker_", "_tuning_objective_metric")


class HyperparameterError(ConfigError):
    """A hyperparameter is unknown or has a bad value; the message names it."""


@dataclass(frozen=True)
class TuningRange:
    """A SageMaker parameter range: searched by a tuning job instead of the default."""

    kind: Literal["Continuous", "Integer"]
    low: float
    high: float
    scaling: Literal["Linear", "Logarithmic"] = "Linear"

    def request(self, name: str) -> dict[str, str]:
        text = (lambda v: str(int(v))) if self.kind == "Integer" else str
        low, high = text(self.low), text(self.high)
        return {"Name": name, "MinValue": low, "MaxValue": high, "ScalingType": self.scaling}


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"expected an integer, got {text!r}")
        _check_range(int(value), lo, hi)
        return int(value)

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


def _hp(
    default: Any,
    parse: Callable[[str], Any],
    *,
    tune: TuningRange | None = None,
    in_definition: bool = True,
) -> Any:
    """One hyperparameter's declaration, kept as the dataclass field's default and metadata.

    `in_definition`: the pipeline definition states the value (False for settings that
    belong to the machine or the run, not to the model)."""
    return field(default=default, metadata={"parse": parse, "tune": tune, "in_definition": in_definition})


_fraction = _float(0.0, 1.0, lo_open=True)  # in (0, 1]


@dataclass(frozen=True)
class Hyperparameters:
    num_round: int = _hp(400, _int(1, 100_000))  # an upper bound: early stopping picks the best round
    max_depth: int = _hp(5, _int(0, 64), tune=TuningRange("Integer", 3, 8))
    eta: float = _hp(0.08, _fraction, tune=TuningRange("Continuous", 0.02, 0.3, "Logarithmic"))
    subsample: float = _hp(0.85, _fraction, tune=TuningRange("Continuous", 0.6, 1.0))
    colsample_bytree: float = _hp(0.8, _fraction, tune=TuningRange("Continuous", 0.5, 1.0))
    min_child_weight: float = _hp(5.0, _float(0.0), tune=TuningRange("Integer", 1, 20, "Logarithmic"))
    gamma: float = _hp(0.0, _float(0.0))
    reg_lambda: float = _hp(1.0, _float(0.0))
    early_stopping_rounds: int = _hp(30, _int(0))  # 0 turns early stopping off
    # 1 keeps probabilities calibrated (they price loans); imbalance is handled by the decision
    # threshold training picks on validation.  "auto" (negatives / positives) reweights instead.
    scale_pos_weight: float | str = _hp(1.0, _scale_pos_weight)
    seed: int = _hp(7, _int(0, 2**31 - 1))
    nthread: int = _hp(0, _int(0, 1024), in_definition=False)  # 0 = every core
    eval_metric: str = _hp("auc", _choice(tuple(METRICS)))
    # Rounds between checkpoints (only when checkpointing is on).
    checkpoint_interval: int = _hp(10, _int(1), in_definition=False)

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


_PARSERS: dict[str, Callable[[str], Any]] = {f.name: f.metadata["parse"] for f in fields(Hyperparameters)}


def definition_hyperparameters() -> dict[str, str]:
    """The values the pipeline definition sets, as SageMaker's strings (the declared defaults)."""
    return {f.name: _text(f.default) for f in fields(Hyperparameters) if f.metadata["in_definition"]}


def tuning_ranges() -> dict[str, list[dict[str, str]]]:
    """A tuning job's ParameterRanges: every hyperparameter declared with a tuning range."""
    ranges: dict[str, list[dict[str, str]]] = {"ContinuousParameterRanges": [], "IntegerParameterRanges": []}
    for f in fields(Hyperparameters):
        tune: TuningRange | None = f.metadata["tune"]
        if tune is not None:
            ranges[f"{tune.kind}ParameterRanges"].append(tune.request(f.name))
    return ranges


def objective_type(eval_metric: str) -> str:
    """The tuning objective's direction for an evaluation metric."""
    return "Maximize" if METRICS[eval_metric] else "Minimize"


def _text(value: Any) -> str:
    """A default as SageMaker passes it: '5' for 5.0, so integers read as integers."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
