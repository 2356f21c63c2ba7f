"""The environment's Feature Store groups, one per group in the feature spec."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from config import Environment, ProjectConfig
from constructs import Construct
from constructs.feature_group import FeatureGroup
from pipeline_steps.common.feature_spec import FeatureSpec
from stacks.removal import removal_policy

OFFLINE_STORE_PREFIX = "feature-store"


class FeatureStoreStack(Stack):
    """A Glue database for the offline store tables and one feature group per
    `spec.feature_groups`, named `<project>-<env>-<group>`.  Exposes `feature_groups` by
    spec group name and `glue_database`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ProjectConfig,
        environment: Environment,
        spec: FeatureSpec,
        bucket_name: str,
        key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        prefix = config.prefix(environment)
        removal = removal_policy(environment)
        self.glue_database = f"{prefix}_feature_store".replace("-", "_")
        database = glue.CfnDatabase(
            self,
            "OfflineStoreDatabase",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.glue_database, description=f"{prefix}: Feature Store offline store tables"
            ),
        )
        database.apply_removal_policy(removal)
        # By its deterministic name, not a cross-stack reference: IAM resources read as plain ARNs.
        bucket = s3.Bucket.from_bucket_name(self, "OfflineStoreBucket", bucket_name)
        self.feature_groups: dict[str, FeatureGroup] = {}
        for group in spec.feature_groups:
            name = f"{prefix}-{group.name}"
            fg = FeatureGroup(
                self,
                group.name,
                spec=spec,
                group=group,
                feature_group_name=name,
                bucket=bucket,
                prefix=OFFLINE_STORE_PREFIX,
                key=key,
                glue_database=self.glue_database,
                table_name=name.replace("-", "_"),
                removal_policy=removal,
            )
            fg.feature_group.add_resource_dependency(database)
            self.feature_groups[group.name] = fg
