"""Which resources hold state, and which destructive changes the config allows."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from review.settings import AllowedChange
from review.template_diff import DESTROY, MAY_REPLACE, ORPHAN, REPLACE, ResourceChange

# Resource types whose replacement or deletion loses data, keys, history or a serving address.
STATEFUL_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::SageMaker::FeatureGroup",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::Domain",
        "AWS::Logs::LogGroup",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
        "AWS::EFS::FileSystem",
        "AWS::ECR::Repository",
        "AWS::SQS::Queue",
        "AWS::Kinesis::Stream",
        "AWS::Cognito::UserPool",
        "AWS::SecretsManager::Secret",
        "AWS::Backup::BackupVault",
    }
)
DESTRUCTIVE_IMPACTS = (REPLACE, MAY_REPLACE, DESTROY)


@dataclass(frozen=True)
class Destructive:
    environment: str
    stack: str  # construct path of the stack
    change: ResourceChange
    allowed_by: AllowedChange | None

    @property
    def blocking(self) -> bool:
        return self.allowed_by is None


def destructive(
    environment: str, stack: str, change: ResourceChange, allowed: tuple[AllowedChange, ...]
) -> Destructive | None:
    """A replacement or deletion of a stateful resource, with the config entry allowing it.

    A resource removed with DeletionPolicy Retain (WILL_ORPHAN) keeps its data and is reported
    as a change, not here.
    """
    types = {change.type, change.old_type} - {None}
    if not types & STATEFUL_TYPES or change.impact not in DESTRUCTIVE_IMPACTS:
        return None
    match = next((a for a in allowed if _matches(a, environment, stack, change)), None)
    return Destructive(environment, stack, change, match)


def _matches(allow: AllowedChange, environment: str, stack: str, change: ResourceChange) -> bool:
    return (
        fnmatch.fnmatchcase(environment, allow.environment)
        and fnmatch.fnmatchcase(stack, allow.stack)
        and fnmatch.fnmatchcase(change.logical_id, allow.logical_id)
        and fnmatch.fnmatchcase(change.type, allow.type)
    )


def is_orphaned_stateful(change: ResourceChange) -> bool:
    return change.impact == ORPHAN and change.type in STATEFUL_TYPES
