"""Compare two cloud assemblies per environment and stack: everything the report shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from review.assembly import Assembly, StackTemplate
from review.cost import EnvironmentCost, PriceTable, estimate
from review.nag import NagChange, findings, nag_changes
from review.security import (
    RuleChange,
    StatementChange,
    rule_changes,
    security_group_rules,
    statement_changes,
    statements,
)
from review.serving import configured_version, variants
from review.settings import ReviewConfig
from review.stateful import Destructive, destructive, is_orphaned_stateful
from review.template_diff import ResourceChange, diff_templates


@dataclass
class StackReview:
    path: str
    stack_name: str
    status: str  # changed | added | removed | unchanged
    resources: list[ResourceChange] = field(default_factory=list)
    iam: list[StatementChange] = field(default_factory=list)
    security_groups: list[RuleChange] = field(default_factory=list)
    nag: list[NagChange] = field(default_factory=list)
    # Replaced resources that keep a custom name: CloudFormation refuses the update ("cannot
    # update a stack when a custom-named resource requires replacing").
    name_clashes: list[ResourceChange] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for r in self.resources if r.kind == kind)

    @property
    def changed(self) -> bool:
        return bool(self.resources or self.iam or self.security_groups or self.nag)


@dataclass
class EnvironmentReview:
    name: str
    stacks: list[StackReview]
    destructive: list[Destructive]
    orphaned: list[tuple[str, ResourceChange]]  # stateful resources leaving the stack, data kept
    model_before: list[str]
    model_after: list[str]
    cost_before: EnvironmentCost | None
    cost_after: EnvironmentCost | None

    @property
    def changed(self) -> bool:
        return any(s.changed for s in self.stacks) or self.model_before != self.model_after


@dataclass
class Review:
    base_label: str
    head_label: str
    environments: list[EnvironmentReview]
    prices: PriceTable
    config: ReviewConfig
    head_nag_open: int  # unacknowledged nag findings at head: the synth gate fails

    @property
    def blocking(self) -> list[Destructive]:
        return [d for env in self.environments for d in env.destructive if d.blocking]


def compare(
    base: Assembly,
    head: Assembly,
    *,
    base_config: dict[str, Any] | None,
    head_config: dict[str, Any] | None,
    config: ReviewConfig,
    prices: PriceTable,
    base_label: str = "base",
    head_label: str = "head",
) -> Review:
    old, new = base.by_key(), head.by_key()
    keys = list(new) + [k for k in old if k not in new]
    diffs = diff_templates([(k, _template(old.get(k)), _template(new.get(k))) for k in keys])
    old_findings, new_findings = findings(base.nag_report), findings(head.nag_report)
    nag_by_stack: dict[str, list[NagChange]] = {}
    for change in nag_changes(old_findings, new_findings):
        stack = head.locate(change.finding.construct_path) or base.locate(change.finding.construct_path)
        nag_by_stack.setdefault(stack.key if stack else "(app)", []).append(change)

    envs: dict[str, list[str]] = {}
    for key in keys:
        stack = new.get(key) or old[key]
        envs.setdefault(stack.environment, []).append(key)
    reviews = []
    for env, env_keys in envs.items():
        stack_reviews, hazards, orphans = [], [], []
        for key in env_keys:
            before, after = old.get(key), new.get(key)
            either = after or before
            assert either is not None
            status = "added" if before is None else "removed" if after is None else "changed"
            review = StackReview(
                path=key,
                stack_name=either.stack_name,
                status=status,
                resources=diffs.get(key, []),
                iam=statement_changes(statements(_template(before)), statements(_template(after))),
                security_groups=rule_changes(
                    security_group_rules(_template(before)), security_group_rules(_template(after))
                ),
                nag=nag_by_stack.get(key, []),
            )
            review.name_clashes = [
                c
                for c in review.resources
                if c.kind == "replaced" and kept_name(c, _template(before), _template(after))
            ]
            if status == "changed" and not review.changed:
                review.status = "unchanged"
            for resource_change in review.resources:
                hit = destructive(env, key, resource_change, config.allowed)
                if hit:
                    hazards.append(hit)
                elif is_orphaned_stateful(resource_change):
                    orphans.append((key, resource_change))
            stack_reviews.append(review)
        base_stacks = [s for s in base.stacks if s.environment == env]
        head_stacks = [s for s in head.stacks if s.environment == env]
        reviews.append(
            EnvironmentReview(
                name=env,
                stacks=stack_reviews,
                destructive=hazards,
                orphaned=orphans,
                model_before=served(env, base_stacks, base_config),
                model_after=served(env, head_stacks, head_config),
                cost_before=estimate(env, base_stacks, base_config, config.assumptions(env), prices)
                if base_stacks
                else None,
                cost_after=estimate(env, head_stacks, head_config, config.assumptions(env), prices)
                if head_stacks
                else None,
            )
        )
    open_findings = sum(1 for f in new_findings if not f.acknowledged)
    return Review(base_label, head_label, reviews, prices, config, open_findings)


def served(environment: str, stacks: list[StackTemplate], raw_config: dict[str, Any] | None) -> list[str]:
    """What the environment serves: each endpoint variant's model, or the config's version when
    the templates have no endpoint (deployment outside these stacks)."""
    found = [f"{v.name}: {v.describe()}" for s in stacks for v in variants(s.path, s.template)]
    if found:
        return found
    configured = configured_version(raw_config, environment)
    return [f"no endpoint in the templates; config model_package_version: {configured}"] if configured else []


def kept_name(change: ResourceChange, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The custom name a replaced resource keeps (its `<Type>Name` property, e.g. BucketName for
    AWS::S3::Bucket, EndpointName for AWS::SageMaker::Endpoint), or None."""
    prop = change.type.rsplit("::", 1)[-1] + "Name"
    before = ((old.get("Resources") or {}).get(change.logical_id) or {}).get("Properties") or {}
    after = ((new.get("Resources") or {}).get(change.logical_id) or {}).get("Properties") or {}
    value = after.get(prop)
    return f"{prop} {value}" if isinstance(value, str) and before.get(prop) == value else None


def _template(stack: StackTemplate | None) -> dict[str, Any]:
    return stack.template if stack is not None else {}
