"""Feature groups come from the feature spec: one per group, definitions equal to the spec's."""

from pathlib import Path

from pipeline_steps.common.feature_spec import load_spec

REPO_ROOT = Path(__file__).resolve().parent.parent


def _spec(config):
    return load_spec(REPO_ROOT / config.feature_spec)


def test_one_feature_group_per_spec_group_with_the_specs_definitions(pipeline_synth, dev_stage):
    spec = _spec(pipeline_synth.config)
    t = pipeline_synth.template(dev_stage.feature_store)
    groups = {
        g["Properties"]["FeatureGroupName"]: g["Properties"]
        for g in t.find_resources("AWS::SageMaker::FeatureGroup").values()
    }
    assert sorted(groups) == sorted(f"mlops-dev-{g.name}" for g in spec.feature_groups)
    for group in spec.feature_groups:
        props = groups[f"mlops-dev-{group.name}"]
        assert props["FeatureDefinitions"] == spec.feature_store_definitions(group)
        assert props["RecordIdentifierFeatureName"] == spec.entity_id
        assert props["EventTimeFeatureName"] == spec.entity_time


def test_stores_are_encrypted_and_offline_store_is_iceberg_under_its_prefix(pipeline_synth, dev_stage):
    t = pipeline_synth.template(dev_stage.feature_store)
    for fg in t.find_resources("AWS::SageMaker::FeatureGroup").values():
        props = fg["Properties"]
        name = props["FeatureGroupName"].removeprefix("mlops-dev-")
        assert props["OnlineStoreConfig"]["EnableOnlineStore"] is True
        assert props["OnlineStoreConfig"]["SecurityConfig"]["KmsKeyId"]
        offline = props["OfflineStoreConfig"]
        assert offline["TableFormat"] == "Iceberg"
        assert (
            offline["S3StorageConfig"]["KmsKeyId"] == props["OnlineStoreConfig"]["SecurityConfig"]["KmsKeyId"]
        )
        assert (
            offline["S3StorageConfig"]["S3Uri"]
            == f"s3://mlops-dev-curated-111111111111-eu-west-1/feature-store/{name}"
        )
        assert offline["DataCatalogConfig"]["Database"] == "mlops_dev_feature_store"


def test_feature_store_role_is_scoped_to_its_prefix_key_and_table(pipeline_synth, dev_stage):
    t = pipeline_synth.template(dev_stage.feature_store)
    t.resource_count_is("AWS::IAM::Policy", 0)  # no inline policies
    policies = t.find_resources("AWS::IAM::ManagedPolicy")
    assert len(policies) == len(_spec(pipeline_synth.config).feature_groups)
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any("*" in a for a in actions), statement
            assert statement["Resource"] != "*"
        objects = next(
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Sid"] == "OfflineStoreObjects"
        )
        assert "/feature-store/" in str(objects["Resource"])
