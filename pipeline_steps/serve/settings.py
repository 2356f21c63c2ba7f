"""The server's settings: environment variables (SageMaker's and ours) and CLI overrides."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pipeline_steps.common import contract

UNKNOWN_CATEGORY_POLICIES = ("reject", "missing")
ASYNC_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+$")
T = TypeVar("T", int, float)


class ConfigError(contract.ConfigError):
    """A setting (argument or environment variable) is invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    model_dir: Path
    threshold: float | None  # None: the threshold training chose (model_meta.json)
    max_payload_mb: int
    workers: int
    shutdown_timeout: float
    endpoint_name: str = "local"
    variant_name: str = "AllTraffic"
    model_version: str | None = None  # None: derived from the model file's digest
    unknown_category: str = "reject"
    capture_dir: Path | None = None  # None: no data capture
    capture_percent: float = 0.0
    capture_roll_seconds: float = 60.0
    access_log: bool = False  # one line per request; off: a summary a minute (errors always logged)
    predictor: str = "auto"  # auto (ONNX Runtime when it matches XGBoost) | onnx | xgboost
    # the local asynchronous mode (InvokeEndpointAsync): off unless an output path is given
    async_s3_root: Path | None = None  # the folder standing for S3 (s3://bucket/key = <root>/bucket/key)
    async_output: str | None = None  # s3://bucket/prefix for answers
    async_failure: str | None = None  # s3://bucket/prefix for failures (default: <output>-failures)
    async_max_queue: int = 1000
    async_success_topic: Path | None = None  # a local file standing for the SuccessTopic (JSON Lines)
    async_error_topic: Path | None = None  # ... for the ErrorTopic
    region: str = "local"  # awsRegion in asynchronous notifications

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        root = Path(env.get("OPT_ML_ROOT", "/opt/ml"))
        default_workers = env.get("SAGEMAKER_MODEL_SERVER_WORKERS") or str(min(os.cpu_count() or 1, 8))
        policy = env.get("SERVE_UNKNOWN_CATEGORY", "reject")
        if policy not in UNKNOWN_CATEGORY_POLICIES:
            raise ConfigError(
                f"SERVE_UNKNOWN_CATEGORY={policy!r}: expected one of {UNKNOWN_CATEGORY_POLICIES}"
            )
        predictor = env.get("SERVE_PREDICTOR", "auto")
        if predictor not in ("auto", "onnx", "xgboost"):
            raise ConfigError(f"SERVE_PREDICTOR={predictor!r}: expected auto, onnx or xgboost")
        capture = env.get("SERVE_CAPTURE_DIR")
        values: dict[str, Any] = {
            "host": env.get("SERVE_HOST", "0.0.0.0"),
            "port": _number(env, "SAGEMAKER_BIND_TO_PORT", "8080", int, 1, 65535),
            "model_dir": Path(env.get("SM_MODEL_DIR") or root / "model"),
            "threshold": _number(env, "DECISION_THRESHOLD", "0.5", float, 0.0, 1.0)
            if env.get("DECISION_THRESHOLD")
            else None,
            "max_payload_mb": _number(env, "SERVE_MAX_PAYLOAD_MB", "6", int, 1, 100),
            "workers": _number(env, "SERVE_WORKERS", default_workers, int, 1, 64),
            "shutdown_timeout": _number(env, "SERVE_SHUTDOWN_TIMEOUT_S", "25", float, 0.0, 28.0),
            "endpoint_name": env.get("SERVE_ENDPOINT_NAME", "local"),
            "variant_name": env.get("SERVE_VARIANT_NAME", "AllTraffic"),
            "model_version": env.get("SERVE_MODEL_VERSION") or None,
            "unknown_category": policy,
            "capture_dir": Path(capture) if capture else None,
            "capture_percent": _number(env, "SERVE_CAPTURE_PERCENT", "100", float, 0.0, 100.0),
            "capture_roll_seconds": _number(env, "SERVE_CAPTURE_ROLL_S", "60", float, 0.1, 3600.0),
            "access_log": _flag(env, "SERVE_ACCESS_LOG", "0"),
            "predictor": predictor,
            "async_s3_root": Path(env["SERVE_ASYNC_S3_ROOT"]) if env.get("SERVE_ASYNC_S3_ROOT") else None,
            "async_output": env.get("SERVE_ASYNC_OUTPUT") or None,
            "async_failure": env.get("SERVE_ASYNC_FAILURE") or None,
            "async_max_queue": _number(env, "SERVE_ASYNC_MAX_QUEUE", "1000", int, 1, 100_000),
            "async_success_topic": _path(env, "SERVE_ASYNC_SUCCESS_TOPIC"),
            "async_error_topic": _path(env, "SERVE_ASYNC_ERROR_TOPIC"),
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "local",
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        output = values["async_output"]
        if output is not None:
            for name, uri in (
                ("SERVE_ASYNC_OUTPUT", output),
                ("SERVE_ASYNC_FAILURE", values["async_failure"]),
            ):
                if uri is not None and not ASYNC_URI.match(uri):
                    raise ConfigError(f"{name}={uri!r}: expected s3://bucket/prefix")
            if values["async_s3_root"] is None:
                raise ConfigError("SERVE_ASYNC_OUTPUT needs SERVE_ASYNC_S3_ROOT, the folder standing for S3")
            values["async_failure"] = values["async_failure"] or output.rstrip("/") + "-failures"
        elif values["async_success_topic"] or values["async_error_topic"]:
            raise ConfigError("SERVE_ASYNC_SUCCESS_TOPIC and _ERROR_TOPIC need SERVE_ASYNC_OUTPUT")
        return cls(**values)


def _number(env: Mapping[str, str], name: str, default: str, kind: Callable[[str], T], lo: T, hi: T) -> T:
    raw = env.get(name) or default
    try:
        value = kind(raw)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}={raw!r} is not {noun}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is outside {lo}..{hi}")
    return value


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    if not raw:
        return None
    path = Path(raw)
    if path.is_dir():
        raise ConfigError(f"{name}={raw!r} is a folder; give the topic's file (JSON Lines)")
    return path


def _flag(env: Mapping[str, str], name: str, default: str) -> bool:
    raw = (env.get(name) or default).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")
