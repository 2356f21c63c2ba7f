"""Evaluates the definition's expressions as SageMaker does.

Supported: literals, {"Get": "Parameters.X" | "Execution.X" | "Steps.<step>.<property path>"},
{"Std:Join": {"On", "Values"}}, {"Std:JsonGet": {"PropertyFile", "Path"}}, and the
binary/In/Not/Or conditions.  Anything else is an error that names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_steps.common.contract import ConfigError


class ExpressionError(ConfigError):
    pass


@dataclass
class Context:
    parameters: dict[str, Any]
    execution: dict[str, str]
    # "Steps.<name>.<path>" -> value, filled as steps finish
    properties: dict[str, Any] = field(default_factory=dict)
    # "Steps.<name>.PropertyFiles.<file>" -> local path of the JSON file
    property_files: dict[str, Path] = field(default_factory=dict)
    # When set, Execution.* stays symbolic (used for cache keys).
    symbolic_execution: bool = False


def resolve(value: Any, ctx: Context) -> Any:
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return _get(value["Get"], ctx)
    if set(value) == {"Std:Join"}:
        body = value["Std:Join"]
        return str(body.get("On", "")).join(_as_text(resolve(v, ctx)) for v in body["Values"])
    if set(value) == {"Std:JsonGet"}:
        return _json_get(value["Std:JsonGet"], ctx)
    unknown = [k for k in value if k.startswith("Std:")]
    if unknown:
        raise ExpressionError(f"unsupported pipeline function {unknown[0]!r}")
    return {k: resolve(v, ctx) for k, v in value.items()}


def _get(path: str, ctx: Context) -> Any:
    head, _, rest = path.partition(".")
    if head == "Parameters":
        if rest not in ctx.parameters:
            raise ExpressionError(f"unknown parameter {rest!r}")
        return ctx.parameters[rest]
    if head == "Execution":
        if ctx.symbolic_execution:
            return "{" + path + "}"
        if rest not in ctx.execution:
            raise ExpressionError(f"unknown execution variable {rest!r}")
        return ctx.execution[rest]
    if head == "Steps":
        if path in ctx.properties:
            return ctx.properties[path]
        raise ExpressionError(f"step property {path!r} is not available (has that step run?)")
    raise ExpressionError(f"unsupported reference {path!r}")


def _json_get(body: dict, ctx: Context) -> Any:
    ref = body["PropertyFile"]
    key = ref["Get"] if isinstance(ref, dict) else ref
    if key not in ctx.property_files:
        raise ExpressionError(f"property file {key!r} is not available (has that step run?)")
    file = ctx.property_files[key]
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ExpressionError(f"property file {key} ({file}) is not readable JSON: {err}") from err
    return json_path(data, body["Path"], where=f"{key}")


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def json_path(data: Any, path: str, *, where: str = "") -> Any:
    """The subset of JsonPath SageMaker documents for JsonGet: a.b[0].c"""
    current = data
    for name, index in _TOKEN.findall(path):
        try:
            current = current[int(index)] if index else current[name]
        except (KeyError, IndexError, TypeError):
            raise ExpressionError(f"JsonGet path {path!r} not found in {where}") from None
    return current


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a != b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def evaluate_condition(condition: dict, ctx: Context) -> bool:
    kind = condition["Type"]
    if kind in _COMPARE:
        left = _comparable(resolve(condition["LeftValue"], ctx))
        right = _comparable(resolve(condition["RightValue"], ctx))
        try:
            return bool(_COMPARE[kind](left, right))
        except TypeError as err:
            raise ExpressionError(f"cannot compare {left!r} {kind} {right!r}") from err
    if kind == "In":
        value = resolve(condition["QueryValue"], ctx)
        return value in [resolve(v, ctx) for v in condition["Values"]]
    if kind == "Not":
        return not evaluate_condition(condition["Condition"], ctx)
    if kind == "Or":
        return any(evaluate_condition(c, ctx) for c in condition["Conditions"])
    raise ExpressionError(f"unsupported condition type {kind!r}")


def _comparable(value: Any) -> Any:
    """JsonGet and parameters may give numbers as text; compare them as numbers."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
