"""Read a cloud assembly (`cdk.out`): every CloudFormation stack, nested stage assemblies
included, with the environment it belongs to, and the cdk-nag validation report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_steps.common.contract import InputError

STACK = "aws:cloudformation:stack"
NESTED = "cdk:cloud-assembly"
TOOLING = "tooling"  # the environment name of stacks outside any stage (the delivery pipeline)


class AssemblyError(InputError):
    """The folder is not a readable cloud assembly."""


@dataclass(frozen=True)
class StackTemplate:
    path: str  # the stack's construct path (manifest displayName), e.g. Delivery/Dev/Data
    environment: str  # the stage's name in lower case (`dev`), or `tooling`
    name: str  # the stack's construct id within its stage (`Data`)
    stack_name: str  # the CloudFormation stack name
    account: str
    region: str
    template: dict[str, Any] = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        """What matches a stack across the two sides of a review."""
        return self.path


@dataclass
class Assembly:
    root: Path
    stacks: list[StackTemplate]
    nag_report: dict[str, Any] | None  # validation-report.json, when cdk-nag ran

    def by_key(self) -> dict[str, StackTemplate]:
        return {s.key: s for s in self.stacks}

    @property
    def environments(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.stacks:
            seen.setdefault(s.environment, None)
        return list(seen)

    def locate(self, construct_path: str) -> StackTemplate | None:
        """The stack a construct path lies in (longest stack path that prefixes it)."""
        best = None
        for s in self.stacks:
            if (construct_path == s.path or construct_path.startswith(s.path + "/")) and (
                best is None or len(s.path) > len(best.path)
            ):
                best = s
        return best


def read_assembly(root: Path) -> Assembly:
    root = Path(root)
    if not (root / "manifest.json").is_file():
        raise AssemblyError(f"{root}: not a cloud assembly (no manifest.json); run `cdk synth` first")
    stacks: list[StackTemplate] = []
    _walk(root, stacks)
    if not stacks:
        raise AssemblyError(f"{root}: the cloud assembly has no CloudFormation stacks")
    report_file = root / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.is_file() else None
    return Assembly(root, stacks, report)


def _walk(folder: Path, out: list[StackTemplate]) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        props = artifact.get("properties", {})
        if artifact.get("type") == NESTED:
            _walk(folder / props["directoryName"], out)
        elif artifact.get("type") == STACK:
            path = artifact.get("displayName") or artifact_id
            parts = path.split("/")
            account, region = _environment(artifact.get("environment", ""))
            out.append(
                StackTemplate(
                    path=path,
                    environment=parts[-2].lower() if len(parts) >= 2 else TOOLING,
                    name=parts[-1],
                    stack_name=props.get("stackName", artifact_id),
                    account=account,
                    region=region,
                    template=json.loads((folder / props["templateFile"]).read_text()),
                )
            )


def _environment(uri: str) -> tuple[str, str]:
    """`aws://111111111111/eu-west-1` -> (account, region)."""
    parts = uri.removeprefix("aws://").split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else ("", "")
