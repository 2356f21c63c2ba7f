"""The review's own config (`config/review.yaml`): destructive changes allowed, and the usage
assumptions of the cost estimate.  Validated on load; a wrong value names its field."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from config.paths import REPO_ROOT
from pipeline_steps.common.contract import ConfigError

DEFAULT_PATH = REPO_ROOT / "config" / "review.yaml"


class ReviewConfigError(ConfigError):
    """config/review.yaml has a wrong value; the message names the field."""


@dataclass(frozen=True)
class AllowedChange:
    """A destructive change to a stateful resource that may go ahead (glob patterns)."""

    reason: str
    environment: str = "*"
    stack: str = "*"  # construct path of the stack, e.g. Delivery/Dev/Data
    logical_id: str = "*"
    type: str = "*"

    def describe(self) -> str:
        parts = [f"{k}={getattr(self, k)}" for k in ("environment", "stack", "logical_id", "type")]
        return ", ".join(p for p in parts if not p.endswith("=*")) or "everything"


@dataclass(frozen=True)
class CostAssumptions:
    """Usage the templates cannot tell; every figure is printed with the estimate."""

    hours_per_month: float = 730.0
    processing_hours_per_run: float = 0.5  # each processing step of a pipeline run
    training_hours_per_run: float = 1.0  # each training job (a tuning job runs max_jobs of them)
    monitoring_hours_per_run: float = 0.25  # one scheduled monitoring job
    spot_savings: float = 0.6  # fraction of the on-demand price saved by managed spot training
    serverless_invocations_per_month: float = 1_000_000.0
    serverless_seconds_per_invocation: float = 0.1
    async_busy_hours_per_month: float = 100.0  # an async endpoint that scales to zero
    batch_hours_per_month: float = 10.0  # batch transform instance hours
    s3_gb_per_bucket: float = 50.0
    feature_store_write_units_per_month: float = 1_000_000.0
    feature_store_read_units_per_month: float = 10_000_000.0
    feature_store_online_gb: float = 5.0
    log_gb_per_group_per_month: float = 1.0
    kms_requests_per_month: float = 100_000.0


@dataclass(frozen=True)
class ReviewConfig:
    allowed: tuple[AllowedChange, ...] = ()
    default_assumptions: CostAssumptions = CostAssumptions()
    environment_assumptions: tuple[tuple[str, CostAssumptions], ...] = ()

    def assumptions(self, environment: str) -> CostAssumptions:
        return dict(self.environment_assumptions).get(environment, self.default_assumptions)


def load_review_config(path: Path | None = None) -> ReviewConfig:
    path = Path(path) if path else DEFAULT_PATH
    if not path.is_file():
        raise ReviewConfigError(f"review config {path}: file not found")
    raw = yaml.safe_load(path.read_text()) or {}
    return parse_review_config(raw, str(path))


def parse_review_config(raw: Any, where: str = "review config") -> ReviewConfig:
    _mapping(raw, where, {"allow_destructive", "cost_assumptions"})
    allowed = []
    entries = raw.get("allow_destructive") or []
    if not isinstance(entries, list):
        raise ReviewConfigError(f"{where}: allow_destructive = {entries!r}: expected a list")
    names = {f.name for f in fields(AllowedChange)}
    for i, entry in enumerate(entries):
        at = f"{where}: allow_destructive[{i}]"
        _mapping(entry, at, names)
        if not isinstance(entry.get("reason"), str) or len(entry["reason"].strip()) < 20:
            raise ReviewConfigError(f"{at}.reason: required, a real reason of at least 20 characters")
        for key, value in entry.items():
            if not isinstance(value, str) or not value:
                raise ReviewConfigError(f"{at}.{key} = {value!r}: expected a non-empty string (glob)")
        if all(entry.get(k, "*") == "*" for k in names - {"reason"}):
            raise ReviewConfigError(
                f"{at}: allows every destructive change; name an environment, stack, id or type"
            )
        allowed.append(AllowedChange(**entry))
    costs = raw.get("cost_assumptions") or {}
    _mapping(costs, f"{where}: cost_assumptions", None)
    default = _assumptions(
        costs.get("default") or {}, CostAssumptions(), f"{where}: cost_assumptions.default"
    )
    per_env = tuple(
        (name, _assumptions(body or {}, default, f"{where}: cost_assumptions.{name}"))
        for name, body in costs.items()
        if name != "default"
    )
    return ReviewConfig(tuple(allowed), default, per_env)


def _assumptions(raw: Any, base: CostAssumptions, at: str) -> CostAssumptions:
    names = {f.name for f in fields(CostAssumptions)}
    _mapping(raw, at, names)
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ReviewConfigError(f"{at}.{key} = {value!r}: expected a number >= 0")
    if raw.get("spot_savings", 0) >= 1:
        raise ReviewConfigError(f"{at}.spot_savings = {raw['spot_savings']!r}: expected a fraction below 1")
    return replace(base, **{k: float(v) for k, v in raw.items()})


def _mapping(raw: Any, at: str, allowed: set[str] | None) -> None:
    if not isinstance(raw, dict):
        raise ReviewConfigError(f"{at} = {raw!r}: expected a mapping")
    unknown = sorted(set(raw) - allowed) if allowed is not None else []
    if unknown:
        raise ReviewConfigError(f"{at}.{unknown[0]}: unknown key; expected one of {sorted(allowed or ())}")
