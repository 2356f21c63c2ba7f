"""Every IAM statement of a set of synthesized templates, flattened for rule checks.

Sources: identity policies (AWS::IAM::Policy, AWS::IAM::ManagedPolicy, a role's inline
Policies), trust policies (a role's AssumeRolePolicyDocument), and resource policies (bucket
policies, KMS key policies, VPC endpoint policies).  CloudFormation intrinsics are kept as they
are; `text(value)` renders one as a string for pattern checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IDENTITY = "identity"
TRUST = "trust"
RESOURCE = "resource"

# Resource types whose policy document is a resource policy, and where the document sits.
RESOURCE_POLICIES = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::EC2::VPCEndpoint": "PolicyDocument",
}


@dataclass(frozen=True)
class Statement:
    template: str  # file name
    logical_id: str  # the resource that holds the statement
    resource_type: str
    kind: str  # identity | trust | resource
    sid: str
    effect: str
    principal: Any  # resource and trust policies: the Principal; identity: the roles attached
    actions: tuple[str, ...]
    resources: tuple[Any, ...]
    conditions: dict[str, Any]

    def where(self) -> str:
        return f"{self.template}:{self.logical_id}[{self.sid or '-'}]"

    @property
    def allows(self) -> bool:
        return self.effect == "Allow"

    def resource_text(self) -> str:
        return " ".join(text(r) for r in self.resources)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def text(value: Any) -> str:
    """A CloudFormation value as text: strings as they are, intrinsics as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def inventory(files: list[Path]) -> list[Statement]:
    out: list[Statement] = []
    for path in files:
        resources = json.loads(path.read_text()).get("Resources", {})
        for logical_id, resource in resources.items():
            out += _statements(path.name, logical_id, resource)
    return out


def _statements(template: str, logical_id: str, resource: dict[str, Any]) -> list[Statement]:
    kind_of = resource["Type"]
    props = resource.get("Properties", {})
    documents: list[tuple[str, Any, dict[str, Any]]] = []
    if kind_of in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        attached = props.get("Roles", [])
        documents.append((IDENTITY, attached, props.get("PolicyDocument", {})))
    elif kind_of == "AWS::IAM::Role":
        documents.append((TRUST, None, props.get("AssumeRolePolicyDocument", {})))
        for inline in props.get("Policies", []):
            documents.append((IDENTITY, {"Ref": logical_id}, inline.get("PolicyDocument", {})))
    elif kind_of in RESOURCE_POLICIES and RESOURCE_POLICIES[kind_of] in props:
        documents.append((RESOURCE, None, props[RESOURCE_POLICIES[kind_of]]))
    out = []
    for kind, attached, document in documents:
        if not isinstance(document, dict):  # an intrinsic (not used by this project)
            raise AssertionError(f"{template}:{logical_id}: policy document is not literal JSON")
        for statement in as_list(document.get("Statement")):
            out.append(
                Statement(
                    template=template,
                    logical_id=logical_id,
                    resource_type=kind_of,
                    kind=kind,
                    sid=statement.get("Sid", ""),
                    effect=statement["Effect"],
                    principal=statement.get("Principal", attached),
                    actions=tuple(as_list(statement.get("Action"))),
                    resources=tuple(as_list(statement.get("Resource"))),
                    conditions=statement.get("Condition", {}),
                )
            )
    return out
