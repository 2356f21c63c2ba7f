"""The review as Markdown, fit for one pull-request comment (GitHub's limit: 65,536 characters).

Order: the verdict and destructive changes first, then a summary table per environment, then
each environment's model, cost and per-stack details (folded), then the estimate's basis."""

from __future__ import annotations

from dataclasses import fields, replace

from review.compare import EnvironmentReview, Review, StackReview
from review.cost import LEFT_OUT, EnvironmentCost
from review.settings import CostAssumptions

MARKER = "<!-- mlops-review -->"  # the CI workflow finds and updates its one comment by this
MAX_ROWS = 40
LIMIT = 60_000


def render_stage_reports(review: Review) -> dict[str, str]:
    """One report per environment (a pull request gets one comment per stage, as cdk-diff-action
    posts), each with its own marker so the workflow updates that stage's comment in place."""
    return {
        env.name: render_report(replace(review, environments=[env]), marker=stage_marker(env.name))
        for env in review.environments
    }


def stage_marker(environment: str) -> str:
    return f"<!-- mlops-review:{environment} -->"


def render_report(review: Review, *, marker: str = MARKER) -> str:
    stages = ", ".join(env.name for env in review.environments)
    title = f"## Infrastructure review: `{review.base_label}` → `{review.head_label}`"
    out = [marker, title if marker == MARKER else f"{title} · {stages}", ""]
    blocking = review.blocking
    if blocking:
        out.append(
            f"> [!CAUTION]\n> **{len(blocking)} destructive change(s) to stateful resources.** "
            "Replacing or deleting these loses data, keys, history or a serving address. "
            "`make review` fails until the change is allowed in `config/review.yaml` (`allow_destructive`)."
        )
    else:
        out.append("> No unallowed replacement or deletion of a stateful resource.")
    if review.head_nag_open:
        out.append(
            f">\n> **{review.head_nag_open} unacknowledged cdk-nag finding(s)**: the synth gate fails."
        )
    out.append("")
    hazards = [(env.name, d) for env in review.environments for d in env.destructive]
    if hazards:
        out += ["### Stateful resources replaced or deleted", ""]
        out += [
            "| | environment | stack | resource | type | change | because of |",
            "|---|---|---|---|---|---|---|",
        ]
        for env, d in hazards:
            mark = "⛔" if d.blocking else f"✅ allowed ({d.allowed_by.reason})" if d.allowed_by else ""
            props = ", ".join(d.change.replacing_properties) or "-"
            out.append(
                f"| {mark} | {env} | {d.stack} | `{d.change.logical_id}` | {d.change.type} | "
                f"{_impact(d.change.impact)} | {props} |"
            )
        out.append("")
    clashes = [(env.name, s) for env in review.environments for s in env.stacks if s.name_clashes]
    if clashes:
        out += [
            "**Replacements CloudFormation will refuse**: these resources keep their custom name while "
            "being replaced (rename them, or change what forces the replacement):",
            "",
        ]
        for env_name, clash in clashes:
            for c in clash.name_clashes:
                because = ", ".join(c.replacing_properties) or "?"
                out.append(f"- {env_name} {clash.path}: `{c.logical_id}` ({c.type}, because of {because})")
        out.append("")
    orphans = [(env.name, s, c) for env in review.environments for s, c in env.orphaned]
    if orphans:
        out += [
            "Stateful resources leaving their stack with `DeletionPolicy: Retain` (kept, no longer managed):",
            "",
        ]
        out += [f"- {env} {stack}: `{c.logical_id}` ({c.type})" for env, stack, c in orphans]
        out.append("")
    out += _summary(review)
    for environment in review.environments:
        out += _environment(environment)
    out += _basis(review)
    text = "\n".join(out) + "\n"
    if len(text) > LIMIT:
        text = (
            text[:LIMIT]
            + "\n\n… (report cut at the comment size limit; the full report is the job's artifact)\n"
        )
    return text


def _summary(review: Review) -> list[str]:
    out = [
        "### Summary",
        "",
        "| environment | added | removed | modified | replaced | IAM | SG rules | nag | model served "
        "| cost / month (before → after) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env in review.environments:
        stacks = env.stacks
        iam = sum(len(s.iam) for s in stacks)
        loud_iam = sum(1 for s in stacks for c in s.iam if c.loud)
        sg = sum(len(s.security_groups) for s in stacks)
        loud_sg = sum(1 for s in stacks for c in s.security_groups if c.loud)
        nag = sum(len(s.nag) for s in stacks)
        model = "changed" if env.model_before != env.model_after else "same"
        counts = " | ".join(
            str(sum(s.count(k) for s in stacks)) for k in ("added", "removed", "modified", "replaced")
        )
        out.append(
            f"| **{env.name}** | {counts} "
            f"| {iam}{' ⚠️' if loud_iam else ''} | {sg}{' ⚠️' if loud_sg else ''} | {nag} | {model} "
            f"| {_cost_delta(env.cost_before, env.cost_after)} |"
        )
    return out + [""]


def _environment(env: EnvironmentReview) -> list[str]:
    out = [f"### Environment `{env.name}`", ""]
    if env.model_before or env.model_after:
        if env.model_before == env.model_after:
            out.append("**Model served** (unchanged): " + "; ".join(env.model_after))
        else:
            out.append("**Model served**")
            out.append("")
            out.append(f"- before: {'; '.join(env.model_before) or 'nothing'}")
            out.append(f"- after: {'; '.join(env.model_after) or 'nothing'}")
        out.append("")
    out += _cost_table(env.cost_before, env.cost_after)
    for stack in env.stacks:
        out += _stack(stack)
    return out


def _stack(stack: StackReview) -> list[str]:
    if stack.status == "unchanged":
        return [f"- `{stack.path}` ({stack.stack_name}): no change", ""]
    loud = any(c.loud for c in stack.iam) or any(c.loud for c in stack.security_groups)
    title = (
        f"<b>{stack.path}</b> ({stack.stack_name}, stack {stack.status}): {stack.count('added')} added, "
        f"{stack.count('removed')} removed, {stack.count('modified')} modified, "
        f"{stack.count('replaced')} replaced"
        f"{', IAM/network widened ⚠️' if loud else ''}"
    )
    out = ["<details" + (" open" if loud else "") + f"><summary>{title}</summary>", ""]
    if stack.resources:
        out += ["| change | resource | type | properties |", "|---|---|---|---|"]
        order = {"replaced": 0, "removed": 1, "added": 2, "modified": 3}
        changes = sorted(stack.resources, key=lambda c: (order[c.kind], c.logical_id))
        for c in changes[:MAX_ROWS]:
            props = ", ".join(
                f"{name}{' (replaces)' if impact in ('WILL_REPLACE', 'MAY_REPLACE') else ''}"
                for name, impact in sorted(c.properties.items())
            )
            other = ", ".join(c.other)
            detail = "; ".join(p for p in (props, other) if p) or "-"
            out.append(f"| {_impact(c.impact)} | `{c.logical_id}` | {c.type} | {detail} |")
        out += _more(len(changes))
        out.append("")
    if stack.iam:
        out += ["**IAM statements**", "", "| change | policy | statement | risk |", "|---|---|---|---|"]
        ordered = sorted(stack.iam, key=lambda c: (not c.loud, c.kind))
        for sc in ordered[:MAX_ROWS]:
            s = sc.statement
            risk = ("⚠️ new: " + ", ".join(sc.new_risks)) if sc.loud else ", ".join(s.risks()) or "-"
            before = f"<br>was: {_code(sc.before.describe())}" if sc.before else ""
            out.append(f"| {sc.kind} | `{s.resource}` {s.where} | {_code(s.describe())}{before} | {risk} |")
        out += _more(len(ordered))
        out.append("")
    if stack.security_groups:
        out += ["**Security-group rules**", "", "| change | rule | risk |", "|---|---|---|"]
        for rc in stack.security_groups[:MAX_ROWS]:
            risk = ", ".join(rc.rule.risks()) or "-"
            out.append(f"| {rc.kind} | {_code(rc.rule.describe())} | {'⚠️ ' if rc.loud else ''}{risk} |")
        out += _more(len(stack.security_groups))
        out.append("")
    if stack.nag:
        out += ["**cdk-nag**", "", "| change | rule | construct | reason |", "|---|---|---|---|"]
        for n in stack.nag[:MAX_ROWS]:
            f = n.finding
            out.append(f"| {n.kind} | `{f.rule}` | `{f.construct_path}` | {_cell(f.reason) or '-'} |")
        out += _more(len(stack.nag))
        out.append("")
    return out + ["</details>", ""]


def _cost_table(before: EnvironmentCost | None, after: EnvironmentCost | None) -> list[str]:
    if before is None and after is None:
        return []
    cats = list(
        dict.fromkeys([*(before.by_category() if before else {}), *(after.by_category() if after else {})])
    )
    out = [
        f"**Estimated cost per month** ({(after or before).region}, USD; min–max autoscaling)",  # type: ignore[union-attr]
        "",
        "| item | before | after | difference |",
        "|---|---:|---:|---:|",
    ]
    b_cat = before.by_category() if before else {}
    a_cat = after.by_category() if after else {}
    for cat in cats:
        b, a = b_cat.get(cat, (0.0, 0.0)), a_cat.get(cat, (0.0, 0.0))
        out.append(f"| {cat} | {_range(*b)} | {_range(*a)} | {_diff(b, a)} |")
    b_total = (before.low, before.high) if before else (0.0, 0.0)
    a_total = (after.low, after.high) if after else (0.0, 0.0)
    out.append(
        f"| **total** | **{_range(*b_total)}** | **{_range(*a_total)}** | **{_diff(b_total, a_total)}** |"
    )
    unpriced = sorted(set((before.unpriced if before else []) + (after.unpriced if after else [])))
    out += [""] + [f"- not priced: {u}" for u in unpriced]
    changed = _changed_lines(before, after)
    if changed:
        out += ["", "<details><summary>cost lines that changed</summary>", ""]
        out += ["| item | before | after |", "|---|---:|---:|"]
        out += [f"| {item} | {b} | {a} |" for item, b, a in changed[:MAX_ROWS]]
        out += _more(len(changed)) + ["", "</details>"]
    return out + [""]


def _changed_lines(
    before: EnvironmentCost | None, after: EnvironmentCost | None
) -> list[tuple[str, str, str]]:
    b = {(line.category, line.item): line for line in (before.lines if before else [])}
    a = {(line.category, line.item): line for line in (after.lines if after else [])}
    rows = []
    for key in list(dict.fromkeys([*b, *a])):
        lb, la = b.get(key), a.get(key)
        if lb is None or la is None or (lb.low, lb.high) != (la.low, la.high):
            rows.append(
                (
                    _cell(f"{key[0]}: {key[1]}"),
                    _range(lb.low, lb.high) if lb else "-",
                    _range(la.low, la.high) if la else "-",
                )
            )
    return rows


def _basis(review: Review) -> list[str]:
    prices = review.prices
    envs = [e.name for e in review.environments]
    out = [
        "<details><summary>How the cost is estimated</summary>",
        "",
        f"Prices: `review/prices.yaml`, dated **{prices.date}** ({prices.currency}, on-demand list prices, "
        f"regions {', '.join(sorted(prices.regions))}). Resources and instance types come from the "
        "synthesized templates; pipeline runs per month from each environment's `schedules.retraining`; "
        "usage the templates cannot tell from `config/review.yaml`:",
        "",
        "| assumption | " + " | ".join(envs) + " |",
        "|---|" + "---:|" * len(envs),
    ]
    per_env = [review.config.assumptions(e) for e in envs]
    for f in fields(CostAssumptions):
        out.append(f"| {f.name} | " + " | ".join(f"{getattr(a, f.name):,.10g}" for a in per_env) + " |")
    out += ["", "Left out: " + "; ".join(LEFT_OUT) + ".", "", "</details>", ""]
    return out


def _impact(impact: str) -> str:
    return {
        "WILL_CREATE": "add",
        "WILL_UPDATE": "modify",
        "WILL_REPLACE": "**replace**",
        "MAY_REPLACE": "**may replace**",
        "WILL_DESTROY": "**delete**",
        "WILL_ORPHAN": "remove (retained)",
        "NO_CHANGE": "metadata",
    }.get(impact, impact)


def _range(low: float, high: float) -> str:
    return f"${low:,.2f}" if abs(high - low) < 0.005 else f"${low:,.2f}–${high:,.2f}"


def _diff(before: tuple[float, float], after: tuple[float, float]) -> str:
    low, high = after[0] - before[0], after[1] - before[1]
    if abs(low) < 0.005 and abs(high) < 0.005:
        return "0"

    def fmt(v: float) -> str:
        return f"{'+' if v >= 0 else '−'}${abs(v):,.2f}"

    return fmt(low) if abs(high - low) < 0.005 else f"{fmt(low)} / {fmt(high)}"


def _cost_delta(before: EnvironmentCost | None, after: EnvironmentCost | None) -> str:
    b = (before.low, before.high) if before else (0.0, 0.0)
    a = (after.low, after.high) if after else (0.0, 0.0)
    return f"{_range(*b)} → {_range(*a)} ({_diff(b, a)})"


def _code(text: str) -> str:
    return "`" + _cell(text).replace("`", "'") + "`"


def _cell(text: str) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def _more(total: int) -> list[str]:
    return [f"| … {total - MAX_ROWS} more | | | |"] if total > MAX_ROWS else []
