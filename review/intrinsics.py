"""Template values with CloudFormation intrinsics rendered as short readable strings, so two
templates' values compare and print the same way (`Ref X` -> `${X}`, GetAtt -> `${X.Arn}`)."""

from __future__ import annotations

import json
from typing import Any


def render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return "${" + str(arg) + "}"
        if fn == "Fn::GetAtt":
            target = ".".join(arg) if isinstance(arg, list) else str(arg)
            return "${" + target + "}"
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            return str(arg[0]).join(render(v) for v in arg[1])
        if fn == "Fn::Sub":
            return arg if isinstance(arg, str) else render(arg[0])
        if fn == "Fn::ImportValue":
            return "import:" + render(arg)
        if fn == "Fn::Select" and isinstance(arg, list) and len(arg) == 2:
            return f"{render(arg[1])}[{render(arg[0])}]"
        if fn == "Fn::Split" and isinstance(arg, list) and len(arg) == 2:
            return f"split({render(arg[1])}, {render(arg[0])})"
    return json.dumps(value, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
