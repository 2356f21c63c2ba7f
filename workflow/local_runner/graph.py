"""A definition's steps as a graph: Condition branches flattened, dependencies found, ordered.

Dependencies are the data references (`Get: Steps.X...`, property files) and DependsOn; a
step inside a Condition's IfSteps/ElseSteps also depends on the condition and runs only on
its branch's outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline_steps.common.contract import ConfigError

_STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9\-_]+)\.")


@dataclass
class Step:
    body: dict[str, Any]
    depends: set[str] = field(default_factory=set)
    branch_of: tuple[str, bool] | None = None  # (condition step, taken when outcome is ...)

    @property
    def name(self) -> str:
        return self.body["Name"]

    @property
    def type(self) -> str:
        return self.body["Type"]


def flatten(definition: dict[str, Any]) -> list[Step]:
    steps: list[Step] = []
    names: set[str] = set()

    def add(body: dict[str, Any], branch_of: tuple[str, bool] | None) -> None:
        if body["Name"] in names:
            raise ConfigError(f"step name {body['Name']!r} is used twice")
        names.add(body["Name"])
        step = Step(body, branch_of=branch_of)
        step.depends |= set(body.get("DependsOn", []))
        if branch_of:
            step.depends.add(branch_of[0])
        steps.append(step)
        if body["Type"] == "Condition":
            for child in body["Arguments"].get("IfSteps", []):
                add(child, (body["Name"], True))
            for child in body["Arguments"].get("ElseSteps", []):
                add(child, (body["Name"], False))

    for body in definition.get("Steps", []):
        add(body, None)
    for step in steps:
        arguments = step.body.get("Arguments", {})
        if step.type == "Condition":
            arguments = {"Conditions": arguments.get("Conditions", [])}
        step.depends |= {m for m in _references(arguments) if m != step.name}
        unknown = step.depends - names
        if unknown:
            raise ConfigError(f"step {step.name} refers to unknown step(s) {sorted(unknown)}")
    return steps


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str):
            match = _STEP_REF.match(get)
            if match:
                found.add(match.group(1))
        for child in value.values():
            found |= _references(child)
    elif isinstance(value, list):
        for child in value:
            found |= _references(child)
    return found


def topological(steps: list[Step]) -> list[Step]:
    done: set[str] = set()
    order: list[Step] = []
    remaining = list(steps)
    while remaining:
        ready = [s for s in remaining if s.depends <= done]
        if not ready:
            raise ConfigError(f"the steps {[s.name for s in remaining]} depend on each other in a cycle")
        step = ready[0]  # definition order among the ready ones: stable output
        order.append(step)
        done.add(step.name)
        remaining.remove(step)
    return order
