"""Where the training step reads and writes, and SageMaker's job configuration files.

Every path defaults to SageMaker's `/opt/ml/...` location under `$OPT_ML_ROOT` (default
`/opt/ml`), so the local runner points the step at its own folder with one variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_steps.common.contract import ConfigError, opt_ml_root, training_failure_path

CHANNELS = ("train", "validation", "spec")
DEFAULT_TRACKER_PORT = 9099


@dataclass(frozen=True)
class Paths:
    root: Path
    hyperparameters: Path
    resource_config: Path
    input_data_config: Path
    data: Path
    model: Path
    output: Path
    checkpoints: Path

    @property
    def failure(self) -> Path:
        return training_failure_path(self.output)

    def channel(self, name: str) -> Path:
        return self.data / name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if env is None else env
        root = opt_ml_root(env)
        config = root / "input" / "config"
        return cls(
            root=root,
            hyperparameters=Path(env.get("SM_HYPERPARAMETERS_FILE", config / "hyperparameters.json")),
            resource_config=Path(env.get("SM_RESOURCE_CONFIG_FILE", config / "resourceconfig.json")),
            input_data_config=Path(env.get("SM_INPUT_DATA_CONFIG_FILE", config / "inputdataconfig.json")),
            data=Path(env.get("SM_INPUT_DATA_DIR", root / "input" / "data")),
            model=Path(env.get("SM_MODEL_DIR", root / "model")),
            output=Path(env.get("SM_OUTPUT_DIR", root / "output")),
            checkpoints=Path(env.get("SM_CHECKPOINT_DIR", root / "checkpoints")),
        )


@dataclass(frozen=True)
class Cluster:
    current_host: str
    hosts: tuple[str, ...]
    tracker_host: str
    tracker_port: int
    distribution: Mapping[str, str] = field(default_factory=dict)  # channel -> S3DistributionType

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def is_first(self) -> bool:
        return self.rank == 0

    def sharded_by_key(self, channel: str) -> bool:
        return self.distribution.get(channel) == "ShardedByS3Key"


def read_json(path: Path, what: str, *, default: Any = ...) -> Any:
    if not path.exists():
        if default is ...:
            raise ConfigError(f"{what}: {path.name} not found")
        return default
    try:
        return json.loads(path.read_text() or "{}")
    except json.JSONDecodeError as err:
        raise ConfigError(f"{what}: {path.name} is not valid JSON: {err}") from None


def load_cluster(paths: Paths, env: Mapping[str, str] | None = None) -> Cluster:
    """resourceconfig.json (missing = one local host) + inputdataconfig.json + tracker env."""
    env = os.environ if env is None else env
    rc = read_json(paths.resource_config, "resource config", default={})
    if not isinstance(rc, dict):
        raise ConfigError("resource config: expected a JSON object")
    hosts = rc.get("hosts") or [rc.get("current_host", "algo-1")]
    current = rc.get("current_host", hosts[0])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise ConfigError(f"resource config: field 'hosts' must be a list of host names, got {hosts!r}")
    if len(set(hosts)) != len(hosts):
        raise ConfigError(f"resource config: field 'hosts' has duplicates: {hosts}")
    if current not in hosts:
        raise ConfigError(f"resource config: field 'current_host' {current!r} is not in hosts {hosts}")
    idc = read_json(paths.input_data_config, "input data config", default={})
    if not isinstance(idc, dict):
        raise ConfigError("input data config: expected a JSON object")
    distribution = {
        name: str(cfg.get("S3DistributionType", "FullyReplicated"))
        for name, cfg in idc.items()
        if isinstance(cfg, dict)
    }
    port_text = env.get("SM_TRACKER_PORT", str(DEFAULT_TRACKER_PORT))
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"environment variable SM_TRACKER_PORT: {port_text!r} is not a port number"
        ) from None
    return Cluster(
        current_host=current,
        hosts=tuple(hosts),
        tracker_host=env.get("SM_TRACKER_HOST") or hosts[0],
        tracker_port=port,
        distribution=distribution,
    )
