"""Lineage and the registry's records: the approval history (who, when), where a version is
deployed, one model package group per use case, clear errors.  The chain of a model registered by
a real pipeline run is checked in test_workflow_runner_end_to_end.py (it reuses that module's run)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from workflow.definition.environment import settings_for_environment
from workflow.lineage import lineage, lineage_from_sagemaker
from workflow.lineage import main as lineage_main
from workflow.local_runner.__main__ import main as runner_main
from workflow.local_runner.registry import LocalModelRegistry, RegistryError

REPO = Path(__file__).resolve().parents[1]
GROUP = "mlops-dev-merchant-credit"


def request(spec_name: str = "merchant-credit", status: str = "Approved") -> dict:
    return {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": {
            "feature_spec_name": spec_name,
            "feature_spec_sha256": "ab" * 32,
            "pipeline_execution_id": "local-0001",
            "data_location": "s3://local-raw/credit/entities/",
        },
    }


def config_serving(tmp_path: Path, dev_version: int | None, env: str = "dev") -> Path:
    raw = copy.deepcopy(yaml.safe_load((REPO / "config" / "environments.yaml").read_text()))
    raw["environments"][env]["model_package_version"] = dev_version
    path = tmp_path / f"environments-{env}-{dev_version}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_group_is_named_from_the_spec():
    assert (
        settings_for_environment("dev", spec_name="islr-default").model_package_group
        == "mlops-dev-islr-default"
    )
    assert settings_for_environment("prod").model_package_group == "mlops-prod-merchant-credit"


def test_approval_is_recorded_with_who_and_when(tmp_path):
    registry = LocalModelRegistry(tmp_path / "registry")
    first = registry.register(request())
    assert first["RegistrationApproval"]["by"] == "pipeline execution local-0001"
    registry.register(request(status="PendingManualApproval"))
    args = [
        "--root",
        str(tmp_path),
        "registry",
        "reject",
        GROUP,
        "1",
        "--by",
        "risk-review",
        "--reason",
        "drift",
    ]
    assert runner_main(args) == 0
    chain = lineage(tmp_path, GROUP, 1, config_serving(tmp_path, 1))
    last = chain["approval"][-1]
    assert (last["from"], last["to"], last["by"], last["description"]) == (
        "Approved",
        "Rejected",
        "risk-review",
        "drift",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", last["at"])
    # Pinned in config, a version is deployed whatever its status; null serves the latest approved.
    assert chain["deployed_in"] == ["dev (model_package_version: 1)"]
    assert lineage(tmp_path, GROUP, 1, config_serving(tmp_path, None))["deployed_in"] == []
    assert runner_main(["--root", str(tmp_path), "registry", "approve", GROUP, "2"]) == 0
    approved = lineage(tmp_path, GROUP, 2, config_serving(tmp_path, None))
    assert approved["deployed_in"] == ["dev (model_package_version: null, the latest approved)"]
    assert approved["approval"][-1]["by"].endswith("(local CLI)")


def test_another_use_case_is_refused_by_the_group(tmp_path):
    registry = LocalModelRegistry(tmp_path / "registry")
    registry.register(request())
    with pytest.raises(RegistryError, match="holds models of feature spec 'merchant-credit'.*'islr-default'"):
        registry.register(request("islr-default"))
    assert [p["ModelPackageVersion"] for p in registry.versions(GROUP)] == [1]


def test_unknown_version_and_bad_argument_are_clear_errors(tmp_path, capsys):
    assert lineage_main([f"{GROUP}/99", "--root", str(tmp_path)]) == 2
    assert "has no version 99" in capsys.readouterr().err
    assert lineage_main(["no-version", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "error: model 'no-version': expected GROUP/VERSION, e.g. mlops-dev-merchant-credit/3\n"
    )


def test_sagemaker_model_package_arn(tmp_path, monkeypatch):
    """A SageMaker model package ARN: DescribeModelPackage's recorded metadata (moto), who created
    and last changed it, and where the config deploys it; the fields read exist in botocore's
    DescribeModelPackage output shape."""
    import boto3
    import botocore.session
    from moto import mock_aws

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    group = "mlops-prod-merchant-credit"
    with mock_aws():
        client = boto3.client("sagemaker", region_name="eu-west-1")
        client.create_model_package_group(ModelPackageGroupName=group)
        arn = client.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties={
                "pipeline_execution_id": "exec-1",
                "feature_spec_name": "merchant-credit",
            },
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/serve:1",
                        "ModelDataUrl": "s3://b/m.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        client.update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="risk review"
        )
        prod_latest = config_serving(tmp_path, None, "prod")
        chain = lineage_from_sagemaker(arn, prod_latest, client=client)
        assert lineage_main([arn, "--config", str(prod_latest)]) == 0
    assert (chain["group"], chain["version"], chain["status"]) == (group, 1, "Approved")
    assert chain["model_artifact"] == "s3://b/m.tar.gz"
    registered, changed = chain["approval"]
    assert registered["by"] != "not recorded" and re.match(r"\d{4}-\d\d-\d\dT", registered["at"])
    assert (changed["to"], changed["description"]) == ("Approved", "risk review")
    # prod's config serves the latest approved version of prod's group: this one.
    assert chain["deployed_in"] == ["prod (model_package_version: null, the latest approved)"]
    shape = (
        botocore.session.get_session().get_service_model("sagemaker").operation_model("DescribeModelPackage")
    )
    members = shape.output_shape.members
    for field in (
        "CustomerMetadataProperties",
        "CreatedBy",
        "LastModifiedBy",
        "ApprovalDescription",
        "ModelMetrics",
    ):
        assert field in members
    assert {"UserProfileName", "IamIdentity"} <= set(members["CreatedBy"].members)


def test_latest_monitoring_verdict(tmp_path):
    registry = LocalModelRegistry(tmp_path / "registry")
    registry.register(request())
    assert lineage(tmp_path, GROUP, 1)["monitoring"] is None
    registry.record_monitoring_verdict(GROUP, 1, {"verdict": "ok", "psi_max": 0.04})
    registry.record_monitoring_verdict(GROUP, 1, {"verdict": "drift", "psi_max": 0.31})
    latest = lineage(tmp_path, GROUP, 1)["monitoring"]
    assert (latest["verdict"], latest["psi_max"]) == ("drift", 0.31) and "at" in latest
    with pytest.raises(RegistryError, match="expected a mapping with a 'verdict'"):
        registry.record_monitoring_verdict(GROUP, 1, {"psi_max": 1})
