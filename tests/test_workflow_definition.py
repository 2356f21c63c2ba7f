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


def test_a_spark_environment_prepares_on_aws_spark_image(definitions):
    """prod (preprocess.engine: spark): one Spark application on AWS's image over its instances."""
    from workflow.definition import placeholders as names
    from workflow.definition.spark_step import spark_image_uri, spark_repository_arn

    dev = json.loads(definitions["dev"])["Steps"][0]["Arguments"]
    prod = json.loads(definitions["prod"])["Steps"][0]["Arguments"]
    assert dev["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "pipeline_steps.preprocess"]
    app = prod["AppSpecification"]
    image = spark_image_uri("eu-west-1")
    assert (
        app["ImageUri"]
        == image
        == "571004829621.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312"
    )
    assert spark_repository_arn("eu-west-1") == (
        "arn:aws:ecr:eu-west-1:571004829621:repository/sagemaker-spark-processing"
    )
    assert app["ContainerEntrypoint"] == [
        "smspark-submit",
        "--py-files",
        "/opt/ml/processing/input/spark-code",
        "/opt/ml/processing/input/spark-entry/${SparkEntryFile}",
    ]
    # One token per argument (smspark-submit joins them into one shell line), staging on HDFS.
    assert all(a.startswith("--") and "=" in a for a in app["ContainerArguments"])
    assert "--staging=hdfs:///preprocess-staging" in app["ContainerArguments"]
    inputs = {i["InputName"]: i["S3Input"] for i in prod["ProcessingInputs"]}
    assert set(inputs) == {"spec", "entities", "history", "spark-entry", "spark-code"}
    assert {i["S3DataDistributionType"] for i in inputs.values()} == {"FullyReplicated"}
    assert inputs["spark-code"]["S3Uri"] == "s3://${SparkCodeBucket}/${SparkCodeFile}"
    assert (names.SPARK_CODE_BUCKET, names.SPARK_CODE_FILE) == ("SparkCodeBucket", "SparkCodeFile")
    assert prod["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == {
        "Get": "Parameters.ProcessingInstanceCount"
    }
    assert prod["NetworkConfig"]["EnableNetworkIsolation"] is True
    # The request SageMaker would get, with the placeholders filled, passes botocore's model.
    check_request("Processing", _filled(prod))


def _filled(args: dict) -> dict:
    """Placeholders and parameter references replaced by plausible values."""
    import re

    text = re.sub(r"\$\{(\w+)\}", r"x\1", json.dumps(args))
    request = json.loads(text)
    request["ProcessingResources"]["ClusterConfig"].update(InstanceType="ml.m5.2xlarge", InstanceCount=2)
    for item in request["ProcessingInputs"]:
        if isinstance(item["S3Input"]["S3Uri"], dict):
            item["S3Input"]["S3Uri"] = "s3://bucket/prefix"
    for output in request["ProcessingOutputConfig"]["Outputs"]:
        output["S3Output"]["S3Uri"] = "s3://bucket/out"
    request["RoleArn"] = "arn:aws:iam::222222222222:role/r"
    request["AppSpecification"]["ContainerArguments"] = [
        a if isinstance(a, str) else "--x=y" for a in request["AppSpecification"]["ContainerArguments"]
    ]
    return request


def test_builds_share_botocores_service_models_only_while_building():
    """The SDK's sessions inside a build read the service models through one loader (parsed
    once per process); sessions made elsewhere keep botocore's own loader each."""
    import botocore.session

    from workflow.definition.sdk import shared_service_models

    original = botocore.session.create_loader
    with shared_service_models():
        inside = [botocore.session.Session().get_component("data_loader") for _ in range(2)]
    assert inside[0] is inside[1]
    assert botocore.session.create_loader is original
    outside = [botocore.session.Session().get_component("data_loader") for _ in range(2)]
    assert outside[0] is not outside[1] and inside[0] not in outside
