"""IAM statements and security-group rules of a template, and what a change adds or widens.

Generic over resource types: any property holding a policy document (a mapping with a
`Statement`) is read, wherever it sits (role trust and inline policies, IAM policies, bucket,
key, topic, queue and repository policies ...), as are roles' managed-policy attachments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from review.intrinsics import as_list, render

WORLD = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Statement:
    resource: str  # logical id holding the policy
    where: str  # property path of the document, e.g. PolicyDocument, Policies[0].PolicyDocument
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...]
    conditions: str  # canonical JSON, "" when none
    negated: tuple[str, ...] = ()  # NotAction / NotResource / NotPrincipal present

    @property
    def scope(self) -> tuple[str, str]:
        return (self.resource, self.where)

    def risks(self) -> list[str]:
        """Why this statement deserves a reviewer's eye (empty for a scoped Allow)."""
        if self.effect != "Allow":
            return []
        found = []
        if any(a == "*" or a.endswith(":*") for a in self.actions):
            found.append("all actions")
        elif any("*" in a for a in self.actions):
            found.append("wildcard action")
        if "*" in self.resources:
            found.append("any resource")
        if "*" in self.principals or "AWS:*" in self.principals:
            found.append("any principal (public)")
        elif any(p.endswith(":root") for p in self.principals):
            found.append("a whole account")
        if self.negated:
            found.append("uses " + "/".join(self.negated))
        if not self.conditions and found:
            found.append("no condition")
        return found

    def describe(self) -> str:
        parts = [f"{self.effect} {', '.join(self.actions) or '-'}"]
        parts.append(f"on {', '.join(self.resources) or '-'}")
        if self.principals:
            parts.append(f"to {', '.join(self.principals)}")
        if self.conditions:
            parts.append(f"when {self.conditions}")
        return " ".join(parts)


@dataclass(frozen=True)
class SecurityGroupRule:
    group: str
    direction: str  # ingress | egress
    protocol: str
    ports: str
    peer: str
    description: str = ""

    def risks(self) -> list[str]:
        found = []
        if self.peer in WORLD:
            found.append("open to the internet" if self.direction == "ingress" else "egress to the internet")
        if self.protocol == "-1" or self.ports in ("all", "0-65535"):
            found.append("all ports")
        return found

    def describe(self) -> str:
        arrow = "from" if self.direction == "ingress" else "to"
        return f"{self.group} {self.direction} {self.protocol} {self.ports} {arrow} {self.peer}"


# ---- extraction ----------------------------------------------------------------------------------
def statements(template: dict[str, Any]) -> list[Statement]:
    found: list[Statement] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        for where, document in _documents(props, ""):
            for raw in as_list(document.get("Statement")):
                if isinstance(raw, dict):
                    found.append(_statement(logical_id, where, raw))
        for arn in as_list(props.get("ManagedPolicyArns")):
            found.append(
                Statement(
                    logical_id, "ManagedPolicyArns", "Allow", (f"managed policy {render(arn)}",), (), (), ""
                )
            )
        if resource.get("Type") == "AWS::Lambda::Permission":
            found.append(
                Statement(
                    logical_id,
                    "Permission",
                    "Allow",
                    (render(props.get("Action")),),
                    (render(props.get("FunctionName")),),
                    (render(props.get("Principal")),),
                    json.dumps({k: render(props[k]) for k in ("SourceArn", "SourceAccount") if k in props})
                    if any(k in props for k in ("SourceArn", "SourceAccount"))
                    else "",
                )
            )
    return found


def _documents(value: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        if "Statement" in value:
            return [(path or "(properties)", value)]
        out = []
        for key, sub in value.items():
            out += _documents(sub, f"{path}.{key}" if path else key)
        return out
    if isinstance(value, list):
        out = []
        for i, sub in enumerate(value):
            out += _documents(sub, f"{path}[{i}]")
        return out
    return []


def _statement(logical_id: str, where: str, raw: dict[str, Any]) -> Statement:
    def principals(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [f"{kind}:{render(p)}" for kind, v in sorted(value.items()) for p in as_list(v)]
        return [render(value)]

    negated = tuple(k for k in ("NotAction", "NotResource", "NotPrincipal") if k in raw)
    return Statement(
        resource=logical_id,
        where=where,
        effect=str(raw.get("Effect", "Allow")),
        actions=tuple(sorted(render(a) for a in as_list(raw.get("Action") or raw.get("NotAction")))),
        resources=tuple(sorted(render(r) for r in as_list(raw.get("Resource") or raw.get("NotResource")))),
        principals=tuple(sorted(principals(raw.get("Principal") or raw.get("NotPrincipal")))),
        conditions=json.dumps(_rendered(raw["Condition"]), sort_keys=True) if raw.get("Condition") else "",
        negated=negated,
    )


def _rendered(value: Any) -> Any:
    """Condition values with intrinsics rendered (`${X.Arn}`), keys kept."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in (
            "Ref",
            "Fn::GetAtt",
            "Fn::Join",
            "Fn::Sub",
            "Fn::ImportValue",
        ):
            return render(value)
        return {k: _rendered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rendered(v) for v in value]
    return value


def security_group_rules(template: dict[str, Any]) -> list[SecurityGroupRule]:
    rules: list[SecurityGroupRule] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        if kind == "AWS::EC2::SecurityGroup":
            for direction, key in (("ingress", "SecurityGroupIngress"), ("egress", "SecurityGroupEgress")):
                rules += [
                    _rule(logical_id, direction, r) for r in as_list(props.get(key)) if isinstance(r, dict)
                ]
        elif kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            group = render(props.get("GroupId") or props.get("GroupName") or logical_id)
            rules.append(_rule(group, "ingress" if kind.endswith("Ingress") else "egress", props))
    return rules


def _rule(group: str, direction: str, raw: dict[str, Any]) -> SecurityGroupRule:
    protocol = render(raw.get("IpProtocol", "-1"))
    low, high = raw.get("FromPort"), raw.get("ToPort")
    if protocol == "-1" or (low in (None, -1) and high in (None, -1)):
        ports = "all"
    else:
        ports = render(low) if low == high else f"{render(low)}-{render(high)}"
    peer_keys = (
        "CidrIp",
        "CidrIpv6",
        "SourceSecurityGroupId",
        "DestinationSecurityGroupId",
        "SourcePrefixListId",
        "DestinationPrefixListId",
        "SourceSecurityGroupName",
    )
    peer = next((render(raw[k]) for k in peer_keys if k in raw), "?")
    return SecurityGroupRule(group, direction, protocol, ports, peer, render(raw.get("Description", "")))


# ---- deltas ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatementChange:
    kind: str  # added | removed | widened | narrowed
    statement: Statement
    before: Statement | None = None  # for widened / narrowed: the statement it replaces
    new_risks: tuple[str, ...] = ()  # risks not present on this policy before

    @property
    def loud(self) -> bool:
        return self.kind in ("added", "widened") and bool(self.new_risks)


def statement_changes(old: list[Statement], new: list[Statement]) -> list[StatementChange]:
    """Added/removed statements per policy; a removed+added pair with the same effect and
    either the same actions or the same resources is one change, widened or narrowed."""
    old_set, new_set = set(old), set(new)
    added = [s for s in new if s not in old_set]
    removed = [s for s in old if s not in new_set]
    changes: list[StatementChange] = []
    granted: dict[tuple[str, str], set[tuple[str, str, str]]] = {}  # scope -> (effect, action, resource)
    principals: dict[tuple[str, str], set[str]] = {}
    for s in old:
        granted.setdefault(s.scope, set()).update(
            (s.effect, a, r) for a in s.actions for r in s.resources or ("",)
        )
        principals.setdefault(s.scope, set()).update(s.principals)
    for s in added:
        partner = next(
            (
                r
                for r in removed
                if r.scope == s.scope
                and r.effect == s.effect
                and (r.actions == s.actions) + (r.resources == s.resources) + (r.principals == s.principals)
                >= 2
            ),
            None,
        )
        fresh = tuple(_new_risks(s, granted.get(s.scope, set()), principals.get(s.scope, set())))
        if partner is not None:
            removed.remove(partner)
            wider = _wider(partner, s)
            kind = "widened" if wider else "narrowed" if _wider(s, partner) else "modified"
            changes.append(StatementChange(kind, s, partner, fresh))
        else:
            changes.append(StatementChange("added", s, None, fresh))
    changes += [StatementChange("removed", s) for s in removed]
    return changes


def _new_risks(s: Statement, granted: set[tuple[str, str, str]], principals: set[str]) -> list[str]:
    """The statement's risks that its policy did not already carry: a wildcard action not granted
    before, `*` resources for an action that was scoped before, a principal not trusted before."""
    if s.effect != "Allow":
        return []
    old_actions = {a for _, a, _ in granted}
    wild = [a for a in s.actions if "*" in a and a not in old_actions]
    risks = []
    if any(a == "*" or a.endswith(":*") for a in wild):
        risks.append("all actions")
    elif wild:
        risks.append("wildcard action")
    if "*" in s.resources and any(("Allow", a, "*") not in granted for a in s.actions):
        risks.append("any resource")
    new_principals = set(s.principals) - principals
    if new_principals & {"*", "AWS:*"}:
        risks.append("any principal (public)")
    elif any(p.endswith(":root") for p in new_principals):
        risks.append("a whole account")
    return risks


def _wider(before: Statement, after: Statement) -> bool:
    """`after` grants more than `before`: a superset of actions/resources/principals, or a
    condition dropped, and not merely different."""
    grows = (
        set(after.actions) > set(before.actions)
        or set(after.resources) > set(before.resources)
        or set(after.principals) > set(before.principals)
        or (bool(before.conditions) and not after.conditions)
        or len(after.risks()) > len(before.risks())
    )
    shrinks = (
        set(after.actions) < set(before.actions)
        or set(after.resources) < set(before.resources)
        or set(after.principals) < set(before.principals)
    )
    return grows and not shrinks


@dataclass(frozen=True)
class RuleChange:
    kind: str  # added | removed
    rule: SecurityGroupRule

    @property
    def loud(self) -> bool:
        return self.kind == "added" and bool(self.rule.risks())


def rule_changes(old: list[SecurityGroupRule], new: list[SecurityGroupRule]) -> list[RuleChange]:
    old_set, new_set = set(old), set(new)
    return [RuleChange("added", r) for r in new if r not in old_set] + [
        RuleChange("removed", r) for r in old if r not in new_set
    ]
