"""Step caching: a step whose inputs, code and arguments are unchanged is not run again.

The key is a hash of the step's arguments (parameters and upstream properties resolved,
execution ids left symbolic, as SageMaker's own cache ignores them), the source of the
module the step runs, and the content of every S3 object it reads.  A hit returns the
properties of the run that produced the entry, so downstream steps read the same outputs.

Processing, Training, Tuning and Transform steps are cached when their CacheConfig says so.
A Transform step's model is keyed by what it is (image, environment, the model archive's
content: `transform.model_identity`), not by its name: CreateModel names a model after the
execution, so a name in the key would never match twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from config import REPO_ROOT
from pipeline_steps.common.atomic import write_json
from pipeline_steps.common.contract import ConfigError
from workflow.local_runner.storage import LocalS3

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def expiry_seconds(expire_after: str | None) -> float | None:
    """ISO-8601 durations as the definition's CacheConfig uses them (PnD, PTnH, PTnM)."""
    if not expire_after:
        return None
    match = _DURATION.match(expire_after)
    if not match or not any(match.groups()):
        raise ConfigError(
            f"CacheConfig.ExpireAfter {expire_after!r}: expected an ISO-8601 duration like P30D"
        )
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60


def code_digest(module: str) -> str:
    """sha256 of the step package's source and the shared code it imports."""
    package = REPO_ROOT.joinpath(*module.split("."))
    folders = [package if package.is_dir() else package.parent, REPO_ROOT / "pipeline_steps" / "common"]
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            h.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def input_uris(step_type: str, args: dict[str, Any]) -> list[str]:
    if step_type == "Processing":
        return [i["S3Input"]["S3Uri"] for i in args.get("ProcessingInputs", [])]
    if step_type == "Tuning":
        args = args["TrainingJobDefinition"]
    if step_type in ("Training", "Tuning"):
        return [c["DataSource"]["S3DataSource"]["S3Uri"] for c in args.get("InputDataConfig", [])]
    if step_type == "Transform":
        return [args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]]
    return []


def cache_key(
    step_type: str, symbolic_args: dict[str, Any], resolved_args: dict[str, Any], module: str, s3: LocalS3
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(symbolic_args, sort_keys=True, default=str).encode())
    h.update(code_digest(module).encode())
    for uri in input_uris(step_type, resolved_args):
        h.update(uri.encode() + s3.digest(uri).encode())
    return h.hexdigest()


class StepCache:
    def __init__(self, root: Path):
        self.root = Path(root) / "cache"

    def lookup(self, step: str, key: str, expire_after: str | None, s3: LocalS3) -> dict[str, Any] | None:
        path = self.root / f"{step}-{key[:32]}.json"
        if not path.exists():
            return None
        entry = json.loads(path.read_text())
        limit = expiry_seconds(expire_after)
        if limit is not None and time.time() - entry["created"] > limit:
            return None
        # The outputs it points at must still be there.
        for value in entry["properties"].values():
            if isinstance(value, str) and value.startswith("s3://") and not s3.objects(value):
                return None
        return entry

    def store(self, step: str, key: str, properties: dict[str, Any], execution_id: str) -> None:
        write_json(
            self.root / f"{step}-{key[:32]}.json",
            {
                "step": step,
                "key": key,
                "created": time.time(),
                "execution_id": execution_id,
                "properties": properties,
            },
        )
