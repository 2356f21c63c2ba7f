"""The pipeline definition: built once from code, deterministic, and valid by the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pipeline_steps.common.feature_spec import load_spec
from workflow.definition.build import build_definition
from workflow.definition.environment import settings_for_environment
from workflow.definition.request_check import RequestShapeError, check_request
from workflow.definition.schema_check import (
    DefinitionSchemaError,
    reference_schema,
    strip_extensions,
    validate_definition,
)

SPECS = Path(__file__).resolve().parents[1] / "workflow" / "specs"


@pytest.fixture(scope="module")
def definitions():
    credit, islr = load_spec(SPECS / "merchant_credit.yaml"), load_spec(SPECS / "islr_default.yaml")
    return {
        "dev": build_definition(credit, settings_for_environment("dev")),
        "prod": build_definition(credit, settings_for_environment("prod")),
        "islr": build_definition(islr, settings_for_environment("dev")),
    }


def test_definitions_pass_the_schema(definitions):
    for text in definitions.values():
        validate_definition(json.loads(text))


def test_the_untouched_schema_accepts_everything_but_the_named_extensions(definitions):
    """Only what schema_check.py lists as newer than the schema makes the reference refuse it."""
    validator = jsonschema.Draft7Validator(reference_schema())
    for text in definitions.values():
        definition = json.loads(text)
        assert list(validator.iter_errors(definition)), "the reference schema accepts it: drop the extensions"
        assert not list(validator.iter_errors(strip_extensions(definition)))


def test_the_schema_check_catches_a_broken_definition(definitions):
    broken = json.loads(definitions["dev"])
    broken["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "two"
    with pytest.raises(DefinitionSchemaError, match="Steps/0"):
        validate_definition(broken)
    unknown_step = json.loads(definitions["dev"])
    unknown_step["Steps"].append({"Name": "Oops", "Type": "Teleport", "Arguments": {}})
    with pytest.raises(DefinitionSchemaError):
        validate_definition(unknown_step)


def test_build_is_deterministic_and_per_environment(definitions):
    credit = load_spec(SPECS / "merchant_credit.yaml")
    assert build_definition(credit, settings_for_environment("dev")) == definitions["dev"]
    dev, prod = json.loads(definitions["dev"]), json.loads(definitions["prod"])

    def defaults(d):
        return {p["Name"]: p.get("DefaultValue") for p in d["Parameters"]}

    assert defaults(dev)["ModelApprovalStatus"] == "Approved"
    # Prod approves by hand: the status is no parameter (a caller cannot pass Approved).
    assert "ModelApprovalStatus" not in defaults(prod)
    assert defaults(prod)["ProcessingInstanceCount"] == 2 and defaults(prod)["AucFloor"] == 0.75
    assert "${" not in json.dumps(dev["Parameters"]).replace("${RawBucket}", "").replace(
        "${FeatureSpecUri}", ""
    )


def test_history_input_only_when_the_spec_has_a_history_table(definitions):
    def inputs(text):
        step = json.loads(text)["Steps"][0]
        return [i["InputName"] for i in step["Arguments"]["ProcessingInputs"]]

    assert inputs(definitions["dev"]) == ["spec", "entities", "history"]
    assert inputs(definitions["islr"]) == ["spec", "entities"]
    entities = json.loads(definitions["dev"])["Steps"][0]["Arguments"]["ProcessingInputs"][1]["S3Input"]
    # Every instance reads every file and keeps its hash share of the entities (one answer for 1 or N).
    assert entities["S3DataDistributionType"] == "FullyReplicated"


def test_jobs_are_isolated_encrypted_and_cached(definitions):
    # IngestFeatures calls the Feature Store, so it is not isolated (test_feature_store_ingest.py).
    steps = [s for s in json.loads(definitions["prod"])["Steps"] if s["Name"] != "IngestFeatures"][:3]
    assert [s["Type"] for s in steps] == ["Processing", "Tuning", "Processing"]  # prod tunes
    for step in steps:
        args = step["Arguments"].get("TrainingJobDefinition", step["Arguments"])
        network = args.get("NetworkConfig", args)
        assert network["EnableNetworkIsolation"] is True
        assert network["EnableInterContainerTrafficEncryption"] is True
        assert network["VpcConfig"]["Subnets"] == ["${Subnet0}", "${Subnet1}", "${Subnet2}"]
        assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
        assert {e for p in step["RetryPolicies"] for e in p["ExceptionType"]} >= {"Step.THROTTLING"}


def test_botocore_model_refuses_a_malformed_request():
    with pytest.raises(RequestShapeError, match="RoleArn"):
        check_request(
            "Processing",
            {
                "AppSpecification": {"ImageUri": "x"},
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceCount": 1,
                        "InstanceType": "ml.m5.xlarge",
                        "VolumeSizeInGB": 30,
                    }
                },
            },
        )
    with pytest.raises(RequestShapeError, match="ModelApprovalStatus"):
        check_request("RegisterModel", {"ModelPackageGroupName": "g", "ModelApprovalStatus": 3})


def test_the_definition_cache_returns_the_build_byte_for_byte(definitions, tmp_path, monkeypatch):
    import dataclasses

    from workflow.definition import cached

    credit = load_spec(SPECS / "merchant_credit.yaml")
    dev = settings_for_environment("dev")
    first = cached.definition_text(credit, dev, cache_dir=tmp_path)
    assert first == definitions["dev"]
    assert len(list(tmp_path.iterdir())) == 1
    # A hit is read back without building (the build would fail here).
    monkeypatch.setattr("workflow.definition.build.build_definition", lambda *a: pytest.fail("built"))
    assert cached.definition_text(credit, dev, cache_dir=tmp_path) == first
    # Any input change is a new key.
    keys = {
        cached.cache_key(credit, dev),
        cached.cache_key(credit, dataclasses.replace(dev, auc_floor=0.8)),
        cached.cache_key(load_spec(SPECS / "islr_default.yaml"), dev),
    }
    assert len(keys) == 3


def test_a_definition_that_breaks_the_schema_is_refused_and_not_cached(tmp_path, monkeypatch):
    from workflow.definition import cached

    monkeypatch.setattr(
        "workflow.definition.build.build_definition",
        lambda spec, settings: '{"Version": "2020-12-01", "Steps": [{"Name": "x"}]}',
    )
    with pytest.raises(DefinitionSchemaError, match="breaks the schema"):
        cached.definition_text(
            load_spec(SPECS / "merchant_credit.yaml"), settings_for_environment("dev"), cache_dir=tmp_path
        )
    assert not list(tmp_path.iterdir())
