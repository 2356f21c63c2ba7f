"""cdk-nag findings and acknowledgements from the cloud assembly's validation report.

With the cdk-nag v3 plugins (`Validations.of(app).add_plugins(...)`) an acknowledgement is not
written into template metadata: the report (`validation-report.json`) lists each rule's
unacknowledged violations and its acknowledged ones with their reason, per construct path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    rule: str  # e.g. AwsSolutions-IAM5[Action::s3:Abort*]
    construct_path: str
    reason: str  # the acknowledgement's reason; "" for an unacknowledged finding

    @property
    def acknowledged(self) -> bool:
        return bool(self.reason)


def findings(report: dict[str, Any] | None) -> list[Finding]:
    found: set[Finding] = set()
    for plugin in (report or {}).get("pluginReports", []):
        for key, acknowledged in (("violations", False), ("suppressedViolations", True)):
            for violation in plugin.get(key, []):
                reason = (violation.get("reason") or "(no reason)") if acknowledged else ""
                for construct in violation.get("violatingConstructs", []):
                    found.add(Finding(violation["ruleName"], construct["constructPath"], reason))
    return sorted(found, key=lambda f: (f.construct_path, f.rule))


@dataclass(frozen=True)
class NagChange:
    kind: str  # new finding | finding fixed | acknowledged | acknowledgement removed | reason changed
    finding: Finding

    @property
    def loud(self) -> bool:
        return self.kind in ("new finding", "acknowledged")


def nag_changes(old: list[Finding], new: list[Finding]) -> list[NagChange]:
    before = {(f.rule, f.construct_path): f for f in old}
    after = {(f.rule, f.construct_path): f for f in new}
    changes: list[NagChange] = []
    for key, f in after.items():
        prior = before.get(key)
        if prior is None:
            changes.append(NagChange("acknowledged" if f.acknowledged else "new finding", f))
        elif prior.acknowledged and not f.acknowledged:
            changes.append(NagChange("new finding", f))  # its acknowledgement went away
        elif not prior.acknowledged and f.acknowledged:
            changes.append(NagChange("acknowledged", f))
        elif prior.reason != f.reason:
            changes.append(NagChange("reason changed", f))
    for key, f in before.items():
        if key not in after:
            changes.append(NagChange("acknowledgement removed" if f.acknowledged else "finding fixed", f))
    return changes
