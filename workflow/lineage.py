"""python -m workflow.lineage GROUP/VERSION: where a registered model came from and where it is.

Prints, from what the registry recorded at registration and approval (nothing is looked up
that was not recorded): the data location and hash, the feature spec and its hash, the code
commit, the pipeline execution (with its step outcomes when the execution record is local),
the evaluation metrics and report, the approval history (who or what, when), the environments
whose config serves it, and its latest monitoring verdict when one was recorded.

    python -m workflow.lineage mlops-dev-merchant-credit/3 [--root .runs] [--config FILE] [--json]
    python -m workflow.lineage arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from config.paths import REPO_ROOT
from pipeline_steps.common.contract import InputError
from workflow.cli import add_debug_flag, run_cli
from workflow.local_runner.registry import LocalModelRegistry

CONFIG = REPO_ROOT / "config" / "environments.yaml"


def lineage(root: Path, group: str, version: int, config_path: Path = CONFIG) -> dict[str, Any]:
    """The chain of a version in the local registry under `root`."""
    registry = LocalModelRegistry(root / "registry")
    package = registry.get(group, version)
    latest = registry.latest(group)
    return chain(
        package,
        approvals=approvals(package),
        latest_approved=latest["ModelPackageVersion"] if latest else None,
        execution_folder=root / "executions",
        config_path=config_path,
    )


def lineage_from_sagemaker(arn: str, config_path: Path = CONFIG, client: Any = None) -> dict[str, Any]:
    """The chain of a model package in SageMaker's Model Registry, from its recorded metadata
    (DescribeModelPackage).  SageMaker keeps who created the package and who changed it last,
    not every approval change."""
    if client is None:
        import boto3

        client = boto3.client("sagemaker", region_name=arn.split(":")[3])
    package = client.describe_model_package(ModelPackageName=arn)
    group = package["ModelPackageGroupName"]
    latest = client.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    steps = [
        {
            "from": None,
            "to": "registered",
            "at": _iso(package.get("CreationTime")),
            "by": _who(package.get("CreatedBy")),
        }
    ]
    if package.get("LastModifiedTime"):
        steps.append(
            {
                "from": None,
                "to": package.get("ModelApprovalStatus"),
                "at": _iso(package.get("LastModifiedTime")),
                "by": _who(package.get("LastModifiedBy")),
                "description": package.get("ApprovalDescription", ""),
            }
        )
    return chain(
        {**package, "CreationTime": _iso(package.get("CreationTime"))},
        approvals=steps,
        latest_approved=latest[0].get("ModelPackageVersion") if latest else None,
        execution_folder=None,
        config_path=config_path,
    )


def chain(
    package: dict[str, Any],
    *,
    approvals: list[dict[str, Any]],
    latest_approved: int | None,
    execution_folder: Path | None,
    config_path: Path,
) -> dict[str, Any]:
    group, version = package["ModelPackageGroupName"], int(package["ModelPackageVersion"])
    meta = package.get("CustomerMetadataProperties") or {}
    execution_id = meta.get("pipeline_execution_id")
    execution_file = (execution_folder or Path("/nonexistent")) / str(execution_id) / "execution.json"
    execution = json.loads(execution_file.read_text()) if execution_id and execution_file.is_file() else None
    metrics_uri = (
        ((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics", {}).get("S3Uri")
    )
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    return {
        "model_package": package.get("ModelPackageArn"),
        "group": group,
        "version": version,
        "created": package.get("CreationTime"),
        "status": package.get("ModelApprovalStatus"),
        "data": {"location": meta.get("data_location"), "sha256": meta.get("data_sha256")},
        "feature_spec": {"name": meta.get("feature_spec_name"), "sha256": meta.get("feature_spec_sha256")},
        "code_version": meta.get("code_version"),
        "pipeline_execution": {
            "id": execution_id,
            "record": str(execution_file) if execution else None,
            "status": (execution or {}).get("status"),
            "steps": {
                name: step.get("status") for name, step in ((execution or {}).get("steps") or {}).items()
            },
            "parameters": (execution or {}).get("parameters") or {},
        },
        "metrics": {k: meta[k] for k in ("auc", "baseline_auc") if k in meta},
        "metrics_file": metrics_uri,
        "evaluation_report": meta.get("evaluation_report"),
        "model_artifact": package.get("LocalModelArchive") or containers[0].get("ModelDataUrl"),
        "approval": approvals,
        "deployed_in": deployed_in(group, version, latest_approved, config_path),
        "monitoring": (package.get("MonitoringVerdicts") or [None])[-1],
    }


def approvals(package: dict[str, Any]) -> list[dict[str, Any]]:
    """Every status a local version had: set at registration, then each approve/reject."""
    first = [package["RegistrationApproval"]] if "RegistrationApproval" in package else []
    return first + list(package.get("ApprovalHistory") or [])


def deployed_in(group: str, version: int, latest_approved: int | None, config_path: Path) -> list[str]:
    """Environments whose config serves this version: pinned by `model_package_version`, or
    null (latest approved) while this is the group's latest approved version.  An environment
    serves from its own group (`<project>-<env>-<spec>`), so only the group's environment counts."""
    if not config_path.is_file():
        return []
    raw = yaml.safe_load(config_path.read_text()) or {}
    project = raw.get("project", "")
    found = []
    for env, body in (raw.get("environments") or {}).items():
        if not group.startswith(f"{project}-{env}-") or not isinstance(body, dict):
            continue
        pinned = body.get("model_package_version")
        if pinned == version:
            found.append(f"{env} (model_package_version: {version})")
        elif pinned is None and latest_approved == version:
            found.append(f"{env} (model_package_version: null, the latest approved)")
    return found


def _who(user: dict[str, Any] | None) -> str:
    user = user or {}
    identity = (user.get("IamIdentity") or {}).get("Arn")
    return user.get("UserProfileName") or identity or "not recorded"


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else value


def render(chain: dict[str, Any]) -> str:
    ex = chain["pipeline_execution"]
    lines = [
        f"{chain['group']} version {chain['version']}  ({chain['status']}; registered {chain['created']})",
        f"  model package   {chain['model_package']}",
        f"  data            {chain['data']['location'] or 'not recorded'}",
        f"                  sha256 {chain['data']['sha256'] or 'not recorded'}",
        f"  feature spec    {chain['feature_spec']['name'] or 'not recorded'}"
        f"  sha256 {chain['feature_spec']['sha256'] or 'not recorded'}",
        f"  code            {chain['code_version'] or 'not recorded'}",
        f"  pipeline run    {ex['id'] or 'not recorded'}"
        + (
            f"  {ex['status']}: " + ", ".join(f"{k} {v}" for k, v in ex["steps"].items())
            if ex["record"]
            else ""
        ),
        "  metrics         " + (", ".join(f"{k} {v}" for k, v in chain["metrics"].items()) or "not recorded"),
        f"  metrics file    {chain['metrics_file'] or 'not recorded'}",
        f"  report          {chain['evaluation_report'] or 'not recorded'}",
        f"  model artifact  {chain['model_artifact'] or 'not recorded'}",
    ]
    for i, step in enumerate(chain["approval"]):
        head = "  approval        " if i == 0 else "                  "
        lines.append(
            f"{head}{step.get('at')}  {step.get('from') or '-'} -> {step.get('to')}"
            f"  by {step.get('by', 'unknown')}"
            + (f"  ({step['description']})" if step.get("description") else "")
        )
    if not chain["approval"]:
        lines.append("  approval        not recorded")
    lines.append(
        "  deployed in     " + (", ".join(chain["deployed_in"]) or "no environment's config serves it")
    )
    verdict = chain["monitoring"]
    lines.append("  monitoring      " + (json.dumps(verdict) if verdict else "no verdict recorded"))
    return "\n".join(lines)


PROG = "python -m workflow.lineage"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "model", help="GROUP/VERSION (local registry), or a model package ARN (local or SageMaker's)"
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT / ".runs", help="local run folder")
    parser.add_argument("--config", type=Path, default=CONFIG, help="environments config (where deployed)")
    parser.add_argument("--json", action="store_true", help="print the chain as JSON")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    model = args.model
    aws = model.startswith("arn:") and not model.startswith("arn:local:")
    if model.startswith("arn:"):
        if ":model-package/" not in model:
            raise InputError(
                f"model {model!r}: not a model package ARN (arn:...:model-package/GROUP/VERSION)"
            )
        model = model.split(":model-package/", 1)[1]
    group, _, version = model.rpartition("/")
    if not group or not version.isdigit():
        raise InputError(f"model {args.model!r}: expected GROUP/VERSION, e.g. mlops-dev-merchant-credit/3")
    if aws:
        try:
            result = lineage_from_sagemaker(args.model, args.config)
        except Exception as err:  # botocore's ClientError / NoCredentialsError, named as they are
            if type(err).__module__.startswith("botocore"):
                raise InputError(f"SageMaker: {err}") from err
            raise
    else:
        result = lineage(args.root, group, int(version), args.config)
    print(json.dumps(result, indent=2, default=str) if args.json else render(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
