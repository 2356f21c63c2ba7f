"""A local model registry with the Model Registry's shape: groups, versions, approval.

Layout: <root>/<group>/<version>/{model_package.json, model.tar.gz}.  A version is built in a
hidden temporary folder and renamed into place, and version numbers are handed out under a
file lock, so an interrupted or concurrent registration never leaves a half-written version.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_steps.common.atomic import write_json
from pipeline_steps.common.contract import ConfigError

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")


class RegistryError(ConfigError):
    pass


class LocalModelRegistry:
    def __init__(self, root: Path):
        self.root = Path(root)

    @contextmanager
    def _locked(self, group: str) -> Iterator[Path]:
        folder = self.root / group
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def versions(self, group: str) -> list[dict[str, Any]]:
        folder = self.root / group
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if child.name.isdigit() and (child / "model_package.json").exists():
                found.append(json.loads((child / "model_package.json").read_text()))
        return sorted(found, key=lambda p: p["ModelPackageVersion"])

    def get(self, group: str, version: int) -> dict[str, Any]:
        path = self.root / group / str(version) / "model_package.json"
        if not path.exists():
            raise RegistryError(f"model package group {group!r} has no version {version}")
        return json.loads(path.read_text())

    def register(self, request: dict[str, Any], *, model_archive: Path | None = None) -> dict[str, Any]:
        """CreateModelPackage: stores the request, its artifacts and a new version number."""
        group = request.get("ModelPackageGroupName")
        if not group:
            raise RegistryError("CreateModelPackage request has no ModelPackageGroupName")
        status = request.get("ModelApprovalStatus", "PendingManualApproval")
        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"ModelApprovalStatus {status!r}: expected one of {list(APPROVAL_STATUSES)}")
        with self._locked(group) as folder:
            existing = self.versions(group)
            _check_use_case(group, existing, request)
            version = 1 + max((p["ModelPackageVersion"] for p in existing), default=0)
            staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=folder))
            try:
                if model_archive is not None:
                    shutil.copyfile(model_archive, staging / "model.tar.gz")
                package = {
                    **request,
                    "ModelPackageGroupName": group,
                    "ModelPackageVersion": version,
                    "ModelPackageArn": f"arn:local:sagemaker:::model-package/{group}/{version}",
                    "ModelApprovalStatus": status,
                    "ModelPackageStatus": "Completed",
                    "CreationTime": _now(),
                    # Who set the first status: the pipeline run, through its ModelApprovalStatus
                    # (later changes go to ApprovalHistory).
                    "RegistrationApproval": {
                        "from": None,
                        "to": status,
                        "at": _now(),
                        "by": f"pipeline execution {_meta(request).get('pipeline_execution_id', '?')}",
                        "description": "ModelApprovalStatus at registration",
                    },
                    "LocalModelArchive": str(staging.parent / str(version) / "model.tar.gz")
                    if model_archive is not None
                    else None,
                }
                write_json(staging / "model_package.json", package)
                os.replace(staging, folder / str(version))
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return package

    def update_approval(
        self, group: str, version: int, status: str, *, description: str = "", by: str = "unknown"
    ) -> dict[str, Any]:
        """UpdateModelPackage's approval change, with who/why kept in the history."""
        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"approval status {status!r}: expected one of {list(APPROVAL_STATUSES)}")
        with self._locked(group) as folder:
            package = self.get(group, version)
            package.setdefault("ApprovalHistory", []).append(
                {
                    "from": package["ModelApprovalStatus"],
                    "to": status,
                    "at": _now(),
                    "by": by,
                    "description": description,
                }
            )
            package["ModelApprovalStatus"] = status
            write_json(folder / str(version) / "model_package.json", package)
        return package

    def record_monitoring_verdict(self, group: str, version: int, verdict: dict[str, Any]) -> dict[str, Any]:
        """Append a monitoring run's verdict (e.g. {"verdict": "drift", "psi_max": 0.31,
        "report": uri}) to the version, for lineage; the monitoring job calls this."""
        if not isinstance(verdict, dict) or not verdict.get("verdict"):
            raise RegistryError(f"monitoring verdict {verdict!r}: expected a mapping with a 'verdict'")
        with self._locked(group) as folder:
            package = self.get(group, version)
            package.setdefault("MonitoringVerdicts", []).append({"at": _now(), **verdict})
            write_json(folder / str(version) / "model_package.json", package)
        return package

    def latest(self, group: str, *, status: str | None = "Approved") -> dict[str, Any] | None:
        candidates = [p for p in self.versions(group) if status is None or p["ModelApprovalStatus"] == status]
        return candidates[-1] if candidates else None


def _meta(package: dict[str, Any]) -> dict[str, Any]:
    return package.get("CustomerMetadataProperties") or {}


def _check_use_case(group: str, existing: list[dict[str, Any]], request: dict[str, Any]) -> None:
    """A model package group holds one use case: refuse a model built from another feature spec
    (another spec name) than the group's versions so far."""
    wanted = _meta(request).get("feature_spec_name")
    recorded = sorted(
        {str(_meta(p)["feature_spec_name"]) for p in existing if _meta(p).get("feature_spec_name")}
    )
    if wanted and recorded and wanted not in recorded:
        raise RegistryError(
            f"model package group {group!r} holds models of feature spec {recorded[0]!r}; this model "
            f"was built from spec {wanted!r}: register it in that spec's own group"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
