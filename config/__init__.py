"""Project configuration: `load_config()` reads and validates config/environments.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.paths import REPO_ROOT
from config.schema import ConfigError, Environment, ProjectConfig, parse_config

DEFAULT_PATH = Path(__file__).with_name("environments.yaml")

__all__ = ["ConfigError", "Environment", "ProjectConfig", "load_config", "DEFAULT_PATH", "REPO_ROOT"]


def load_config(path: str | Path | None = None) -> ProjectConfig:
    """Load and validate the config file (default: config/environments.yaml)."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"config error: cannot read {path.name}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config error: {path.name} is not valid YAML: {err}") from err
    return parse_config(raw)
