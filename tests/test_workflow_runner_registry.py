import json
import subprocess
import sys
from pathlib import Path

import pytest

from workflow.local_runner.registry import LocalModelRegistry, RegistryError

REPO_ROOT = Path(__file__).resolve().parents[1]


def request(group="g", status="PendingManualApproval", auc="0.8"):
    return {
        "ModelPackageGroupName": group,
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": {"auc": auc},
    }


def test_versions_count_up_and_keep_the_model_archive(tmp_path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"model-bytes")
    registry = LocalModelRegistry(tmp_path / "registry")
    first = registry.register(request(), model_archive=archive)
    second = registry.register(request(status="Approved", auc="0.9"))
    assert (first["ModelPackageVersion"], second["ModelPackageVersion"]) == (1, 2)
    assert (tmp_path / "registry" / "g" / "1" / "model.tar.gz").read_bytes() == b"model-bytes"
    assert registry.latest("g")["ModelPackageVersion"] == 2
    assert registry.latest("g", status="PendingManualApproval")["ModelPackageVersion"] == 1


def test_approval_changes_are_recorded(tmp_path):
    registry = LocalModelRegistry(tmp_path)
    registry.register(request())
    package = registry.update_approval("g", 1, "Approved", description="reviewed")
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalHistory"][0]["from"] == "PendingManualApproval"
    assert (
        json.loads((tmp_path / "g" / "1" / "model_package.json").read_text())["ModelApprovalStatus"]
        == "Approved"
    )
    with pytest.raises(RegistryError, match="'Maybe'"):
        registry.update_approval("g", 1, "Maybe")
    with pytest.raises(RegistryError, match="no version 7"):
        registry.get("g", 7)


def test_an_interrupted_registration_leaves_no_version(tmp_path):
    registry = LocalModelRegistry(tmp_path)
    registry.register(request())
    # What a crash between staging and rename leaves behind: a hidden staging folder.
    staging = tmp_path / "g" / ".2.abcd"
    staging.mkdir()
    (staging / "model_package.json").write_text("{")
    assert [p["ModelPackageVersion"] for p in registry.versions("g")] == [1]
    assert registry.register(request())["ModelPackageVersion"] == 2


REGISTER_FIVE = """
import sys
from workflow.local_runner.registry import LocalModelRegistry
registry = LocalModelRegistry(sys.argv[1])
for _ in range(5):
    print(registry.register({"ModelPackageGroupName": "g"})["ModelPackageVersion"])
"""


def test_concurrent_registrations_get_distinct_versions(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER_FIVE, str(tmp_path)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    versions = sorted(int(v) for out in outputs for v in out.split())
    assert versions == list(range(1, 11))


def test_bad_requests_are_refused(tmp_path):
    registry = LocalModelRegistry(tmp_path)
    with pytest.raises(RegistryError, match="no ModelPackageGroupName"):
        registry.register({"ModelApprovalStatus": "Approved"})
    with pytest.raises(RegistryError, match="'Auto'"):
        registry.register(request(status="Auto"))
