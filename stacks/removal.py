"""The removal policy an environment's stateful resources get (environments.<env>.protection)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy

from config import Environment


def removal_policy(environment: Environment) -> RemovalPolicy:
    """RETAIN (the default, and prod's) keeps feature groups, the Glue database, the model
    package group and log groups when their stack is deleted; DESTROY lets dev be torn down."""
    return RemovalPolicy.RETAIN if environment.protection.retain else RemovalPolicy.DESTROY
