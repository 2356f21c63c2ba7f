"""Narrow a statement in a policy a CDK construct generates for itself (CDK Pipelines' roles),
where the construct offers no option for it.

The policy document is rewritten when it is rendered, after every grant has been added, so
statements the construct adds later are kept; a rewrite that matches no statement fails the
synth, so a CDK upgrade that changes the generated policy cannot silently undo it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsii
from aws_cdk import IResolvable, IResolveContext, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

Statement = dict[str, Any]


def rewrite_statements(
    policy: iam.Policy,
    what: str,
    matches: Callable[[Statement], bool],
    rewrite: Callable[[Statement], Statement | list[Statement]],
) -> None:
    """Replace each statement of `policy` for which `matches` is true by `rewrite(statement)`
    (one statement or several)."""
    cfn = policy.node.default_child
    assert isinstance(cfn, iam.CfnPolicy)
    cfn.policy_document = _Rewrite(cfn.policy_document, what, matches, rewrite)


def rewrite_key_policy_statements(
    key: kms.IKey,
    what: str,
    matches: Callable[[Statement], bool],
    rewrite: Callable[[Statement], Statement | list[Statement]],
) -> None:
    """The same for the key policy of a KMS key a construct generates."""
    cfn = key.node.default_child
    assert isinstance(cfn, kms.CfnKey)
    cfn.key_policy = _Rewrite(cfn.key_policy, what, matches, rewrite)


@jsii.implements(IResolvable)
class _Rewrite:
    """Resolves to the original document with the matching statements rewritten."""

    creation_stack: list[str] = []

    def __init__(
        self,
        original: Any,
        what: str,
        matches: Callable[[Statement], bool],
        rewrite: Callable[[Statement], Statement | list[Statement]],
    ) -> None:
        self.original, self.what, self.matches, self.rewrite = original, what, matches, rewrite

    def to_string(self) -> str:
        return Token.as_string(self)

    def resolve(self, context: IResolveContext) -> Any:
        document = context.resolve(self.original)
        statements = document["Statement"]
        if not any(self.matches(s) for s in statements):
            raise ValueError(f"generated policy: no statement to rewrite for {self.what}; CDK changed it")
        rewritten: list[Statement] = []
        for statement in statements:
            if not self.matches(statement):
                rewritten.append(statement)
                continue
            new = self.rewrite(statement)
            rewritten += new if isinstance(new, list) else [new]
        document["Statement"] = rewritten
        return document


def actions(statement: Statement) -> list[str]:
    action = statement.get("Action", [])
    return action if isinstance(action, list) else [action]
