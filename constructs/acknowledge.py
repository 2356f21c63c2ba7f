"""One helper for cdk-nag v3 acknowledgements, so every one has the same shape.

An acknowledgement is made on one construct (and so covers only the resources under it), names
the exact rule (and for IAM5 the exact finding, e.g. `AwsSolutions-IAM5[Action::kms:ReEncrypt*]`)
and must give a real reason.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations

from constructs import IConstruct


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge each of `rule_ids` on `scope` with `reason`.

    Rule ids are given as cdk-nag reports them: `AwsSolutions-S1`, `NIST.800.53.R5-...`;
    the pack prefix (`AwsSolutions::`, `NIST.800.53.R5::`) is added here.
    """
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule_ids} needs a real reason, got {reason!r}")
    for rule in rule_ids:
        pack = "NIST.800.53.R5" if rule.startswith("NIST.800.53.R5-") else rule.split("-", 1)[0]
        Validations.of(scope).acknowledge(Acknowledgment(id=f"{pack}::{rule}", reason=reason))
