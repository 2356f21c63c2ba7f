"""A SageMaker Feature Store feature group generated from the feature spec."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

import constructs.acknowledge as nag
from constructs import Construct
from pipeline_steps.common.feature_spec import FeatureGroup as SpecGroup
from pipeline_steps.common.feature_spec import FeatureSpec


class FeatureGroup(Construct):
    """One feature group: online store and Iceberg offline store, both encrypted with `key`.

    Feature definitions come from `spec.feature_store_definitions(group)`; the record id is
    `spec.entity_id` and the event time `spec.entity_time`.  The offline store lives in
    `bucket` under `<prefix>/<group>` and its Glue table `table_name` in `glue_database`.
    A role, scoped to that prefix, the key and that table, lets Feature Store write.  The group
    (its online records) follows `removal_policy` when its stack is deleted.

    Exposes `feature_group` (the L1 resource), `arn`, `role`, `policy`, `offline_store_uri`, and
    `grant`, `grant_put_records`, `grant_read_records` for whoever ingests or reads records.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: FeatureSpec,
        group: SpecGroup,
        feature_group_name: str,
        bucket: s3.IBucket,
        prefix: str,
        key: kms.IKey,
        glue_database: str,
        table_name: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.name = feature_group_name
        self._key_prefix = f"{prefix.strip('/')}/{group.name}"
        self.offline_store_uri = f"s3://{bucket.bucket_name}/{self._key_prefix}"
        # SageMaker writes resource names in lower case in its ARNs.
        self.arn = Stack.of(self).format_arn(
            service="sagemaker", resource="feature-group", resource_name=feature_group_name.lower()
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Feature Store writes of {feature_group_name} to its offline store",
        )
        self.policy = self._offline_store_policy(bucket, key, glue_database, table_name)
        self.feature_group = self._feature_group(spec, group, key, glue_database, table_name)
        self.feature_group.apply_removal_policy(removal_policy)
        # The role's policy must exist before Feature Store first writes.
        self.feature_group.node.add_dependency(self.policy)

    def _offline_store_policy(
        self, bucket: s3.IBucket, key: kms.IKey, glue_database: str, table_name: str
    ) -> iam.ManagedPolicy:
        """Exact actions on exact resources, in a managed policy.  (bucket.grant_read_write and
        key.grant_encrypt_decrypt would give wildcard actions such as s3:DeleteObject* and
        kms:ReEncrypt*, in an inline policy; Feature Store needs only these.)"""
        stack = Stack.of(self)
        objects = bucket.arn_for_objects(f"{self._key_prefix}/*")
        in_account = {"StringEquals": {"s3:ResourceAccount": stack.account}}

        def glue(resource: str) -> str:
            return stack.format_arn(service="glue", resource=resource)

        policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Offline store of {self.name}: its S3 prefix, its Glue table, the data key",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="OfflineStoreObjects",
                    actions=[
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:PutObjectAcl",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                    ],
                    resources=[objects],
                    conditions=in_account,
                ),
                iam.PolicyStatement(
                    sid="OfflineStoreList",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={**in_account, "StringLike": {"s3:prefix": [f"{self._key_prefix}/*"]}},
                ),
                iam.PolicyStatement(
                    sid="OfflineStoreBucketAcl",
                    actions=["s3:GetBucketAcl"],
                    resources=[bucket.bucket_arn],
                    conditions=in_account,
                ),
                iam.PolicyStatement(
                    sid="DataKey",
                    actions=["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[key.key_arn],
                ),
                iam.PolicyStatement(
                    sid="OfflineStoreGlueTable",
                    actions=["glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"],
                    resources=[
                        glue("catalog"),
                        stack.format_arn(service="glue", resource="database", resource_name=glue_database),
                        stack.format_arn(
                            service="glue", resource="table", resource_name=f"{glue_database}/{table_name}"
                        ),
                    ],
                ),
            ],
        )
        nag.acknowledge(
            policy,
            "Object keys under the group's own prefix are generated by Feature Store (account, region, "
            "group and timestamp), so the policy names the prefix; nothing outside it is granted.",
            f"AwsSolutions-IAM5[Resource::{objects}]",
        )
        return policy

    def _feature_group(
        self, spec: FeatureSpec, group: SpecGroup, key: kms.IKey, glue_database: str, table_name: str
    ) -> sagemaker.CfnFeatureGroup:
        return sagemaker.CfnFeatureGroup(
            self,
            "Resource",
            feature_group_name=self.name,
            description=group.description or None,
            record_identifier_feature_name=spec.entity_id,
            event_time_feature_name=spec.entity_time,
            feature_definitions=[
                sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(
                    feature_name=d["FeatureName"], feature_type=d["FeatureType"]
                )
                for d in spec.feature_store_definitions(group)
            ],
            online_store_config={"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": key.key_arn}},
            offline_store_config={
                "S3StorageConfig": {"S3Uri": self.offline_store_uri, "KmsKeyId": key.key_arn},
                "TableFormat": "Iceberg",
                "DataCatalogConfig": {
                    "Catalog": "AwsDataCatalog",
                    "Database": glue_database,
                    "TableName": table_name,
                },
            },
            role_arn=self.role.role_arn,
        )

    def grant(self, grantee: iam.IGrantable, *actions: str) -> iam.Grant:
        """Exactly `actions` (Feature Store runtime or API actions) on this group."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[self.arn])

    def grant_put_records(self, grantee: iam.IGrantable) -> iam.Grant:
        """Write records into this group, one or batched (online and, through Feature Store,
        offline)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:PutRecord", "sagemaker:BatchWriteRecord"],
            resource_arns=[self.arn],
        )

    def grant_read_records(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read records of this group from the online store, one or batched."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:GetRecord", "sagemaker:BatchGetRecord"],
            resource_arns=[self.arn],
        )
