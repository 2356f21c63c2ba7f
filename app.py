#!/usr/bin/env python3
"""The CDK app.

Default (`cdk synth`): the delivery pipeline stack in the tooling account, which contains every
environment's stage.  `cdk synth -c target=environments`: each environment's stacks directly,
for deploying without a tooling account (`cdk deploy 'Dev/*'`).  `-c target=bootstrap`:
the least-privilege CloudFormation execution policy of each account, deployed before
`cdk bootstrap` (README, Deploying).  `-c config=<file>` selects
another config file.  cdk-nag (AwsSolutions and NIST 800-53 R5) checks every synth: an
unacknowledged finding fails it.
"""

from __future__ import annotations

import sys

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

import stacks  # noqa: F401 - imported first: the venv's Node for jsii, and the project's constructs/)
from config import ConfigError, ProjectConfig, load_config
from stacks.cfn_execution_policy_stack import bootstrap_stacks
from stacks.delivery_stack import DeliveryStack
from stacks.environment_stage import EnvironmentStage

TARGETS = ("pipeline", "environments", "bootstrap")


def build_app(
    config: ProjectConfig, *, target: str = "pipeline", app: App | None = None, nag: bool = True
) -> App:
    """Add the project's stacks to `app` (a new App if None) and register cdk-nag."""
    app = app or App()
    if target not in TARGETS:
        raise ValueError(f"context target = {target!r}: expected one of {list(TARGETS)}")
    # The zones each environment uses, given up front: otherwise CDK records an
    # availability-zone lookup (an AWS call from `cdk synth`) when a VPC reads them.
    for env in config.environments:
        app.node.set_context(
            f"availability-zones:account={env.account}:region={env.region}", env.vpc.zones(env.region)
        )
    if target == "pipeline":
        tooling = config.tooling
        DeliveryStack(
            app,
            "Delivery",
            stack_name=f"{config.project}-delivery",
            config=config,
            env=Environment(account=tooling.account, region=tooling.region),
            termination_protection=tooling.termination_protection,
        )
    elif target == "bootstrap":
        bootstrap_stacks(app, config)
    else:
        for env in config.environments:
            EnvironmentStage(app, env.name.capitalize(), config=config, environment=env)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    return app


def main() -> None:
    app = App()
    try:
        config = load_config(app.node.try_get_context("config"))
    except ConfigError as err:  # one line naming the field and what is allowed, no traceback; exit 2
        print(
            f"{err}\n(in {app.node.try_get_context('config') or 'config/environments.yaml'})", file=sys.stderr
        )
        sys.exit(2)
    build_app(config, target=app.node.try_get_context("target") or "pipeline", app=app)
    app.synth()


if __name__ == "__main__":
    main()
