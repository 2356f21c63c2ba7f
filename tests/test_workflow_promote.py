"""workflow.promote: pinning the served version is a one-line config change, checked against the
registry (moto's SageMaker, through the real boto3 client, so requests are validated against
botocore's service model)."""

import boto3
import pytest
from moto import mock_aws

from config import DEFAULT_PATH, load_config
from workflow import promote

GROUP = "mlops-dev-merchant-credit"
CONTAINER = {
    "Image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/serve:1",
    "ModelDataUrl": "s3://b/model.tar.gz",
}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "environments.yaml"
    path.write_text(DEFAULT_PATH.read_text())
    return path


@pytest.fixture
def registry(monkeypatch):
    """Dev's registry (the default config's dev account) whose versions 1..4 are Approved,
    Rejected, Approved, PendingManualApproval."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")
    with mock_aws():
        client = boto3.client("sagemaker", region_name="eu-west-1")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        for status in ("Approved", "Rejected", "Approved", "PendingManualApproval"):
            client.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus=status,
                InferenceSpecification={
                    "Containers": [CONTAINER],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )
        yield client


def test_set_version_changes_one_line_and_keeps_comments(config_file):
    old, new = promote.promote(config_file, "prod", version=4)
    changed = [(a, b) for a, b in zip(old.splitlines(), new.splitlines(), strict=True) if a != b]
    assert changed == [("    model_package_version: 1", "    model_package_version: 4")]
    assert old.count("#") == new.count("#")
    config_file.write_text(new)
    config = load_config(config_file)
    assert config.environment("prod").model_package_version == 4
    assert config.environment("dev").model_package_version == 1  # the other environment untouched


def test_the_arn_is_the_one_the_serving_stack_builds(pipeline_synth):
    config = pipeline_synth.config
    stack = pipeline_synth.app.node.find_child("Delivery").stages["prod"].serving
    assert promote.package_arn(config, "prod", 1) == stack.model_package_arn


def test_latest_approved_skips_rejected_and_pending(config_file, registry):
    assert promote.latest_approved(registry, GROUP) == 3
    _, new = promote.promote(config_file, "dev", version=None, client=registry)
    assert "    model_package_version: 3\n" in new


def test_check_refuses_a_version_the_registry_has_not_approved(config_file, registry):
    with pytest.raises(promote.PromotionError, match="is Rejected, not Approved"):
        promote.promote(config_file, "dev", version=2, client=registry, check=True)
    with pytest.raises(promote.PromotionError, match="is PendingManualApproval, not Approved"):
        promote.promote(config_file, "dev", version=4, client=registry, check=True)
    _, new = promote.promote(config_file, "dev", version=3, client=registry, check=True)
    assert "model_package_version: 3" in new


def test_cli_prints_the_diff_and_writes_atomically(config_file, capsys):
    assert promote.main(["prod", "--version", "5", "--config", str(config_file), "--dry-run"]) == 0
    assert "-    model_package_version: 1\n+    model_package_version: 5" in capsys.readouterr().out
    assert load_config(config_file).environment("prod").model_package_version == 1  # dry run
    assert promote.main(["prod", "--version", "5", "--config", str(config_file)]) == 0
    assert load_config(config_file).environment("prod").model_package_version == 5
    assert promote.main(["staging", "--version", "5", "--config", str(config_file)]) == 1
    assert "unknown environment 'staging'" in capsys.readouterr().err
