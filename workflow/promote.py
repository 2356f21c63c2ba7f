"""Pin the model package version an environment serves: the one-line config change a pull
request then reviews (README "How a version moves from the registry to dev to prod").

    .venv/bin/python -m workflow.promote dev --version 4             # set it, print the diff
    .venv/bin/python -m workflow.promote dev --latest-approved       # ask the registry which
    .venv/bin/python -m workflow.promote prod --version 4 --check    # refuse unless Approved

The registry calls (`list_model_packages`, `describe_model_package`) use the environment's
region and your AWS credentials for its account.  The file is rewritten atomically, comments
and layout kept; the result is validated with the same loader the CDK app uses.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path
from typing import Any

from config import DEFAULT_PATH, ConfigError, load_config
from config.schema import ProjectConfig, parse_config
from pipeline_steps.common.atomic import write_text
from workflow.definition.environment import pipeline_settings

_VERSION_LINE = re.compile(r"^(?P<lead>\s+model_package_version:\s*)(?P<value>[^\s#]+)(?P<rest>.*)$")


class PromotionError(ValueError):
    """The version cannot be pinned; the message says why."""


def group_name(config: ProjectConfig, environment: str) -> str:
    return pipeline_settings(config, config.environment(environment)).model_package_group


def package_arn(config: ProjectConfig, environment: str, version: int) -> str:
    """The ARN the serving stack builds (constructs/served_model.py), from config alone."""
    env = config.environment(environment)
    return (
        f"arn:{env.partition}:sagemaker:{env.region}:{env.account}:model-package/"
        f"{group_name(config, environment).lower()}/{version}"
    )


def set_version(text: str, environment: str, version: int) -> str:
    """`text` (environments.yaml) with `environments.<environment>.model_package_version` set to
    `version`; everything else, comments included, unchanged."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == f"  {environment}:"), None)
    if start is None:
        raise PromotionError(f"environments.{environment}: not found in the config file")
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line.startswith("    ") and not line.lstrip().startswith("#"):
            break  # the next environment (or the end of `environments`)
        match = _VERSION_LINE.match(line.rstrip("\n"))
        if match:
            lines[i] = f"{match['lead']}{version}{match['rest']}\n"
            return "".join(lines)
    raise PromotionError(f"environments.{environment}.model_package_version: no such line to change")


def latest_approved(client: Any, group: str) -> int | None:
    """The newest Approved version in `group`, or None."""
    pages = client.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    versions = [
        int(summary["ModelPackageArn"].rsplit("/", 1)[1])
        for page in pages
        for summary in page["ModelPackageSummaryList"]
    ]
    return max(versions, default=None)


def check_approved(client: Any, arn: str) -> None:
    status = client.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]
    if status != "Approved":
        raise PromotionError(f"{arn} is {status}, not Approved: approve it in the registry first")


def promote(
    path: Path, environment: str, *, version: int | None, client: Any = None, check: bool = False
) -> tuple[str, str]:
    """Returns (old text, new text); the caller writes it.  `client` is a SageMaker client for
    `--latest-approved` and `check`."""
    config = load_config(path)
    if environment not in config.environment_names:
        raise PromotionError(
            f"unknown environment {environment!r}; the config has {config.environment_names}"
        )
    group = group_name(config, environment)
    if version is None:
        version = latest_approved(client, group)
        if version is None:
            raise PromotionError(f"{group} has no Approved model package")
    if check or client is not None:
        check_approved(client, package_arn(config, environment, version))
    old = path.read_text()
    new = set_version(old, environment, version)
    import yaml

    pinned = parse_config(yaml.safe_load(new)).environment(environment).model_package_version
    assert pinned == version, (pinned, version)  # the loader reads back what was written
    return old, new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflow.promote", description=__doc__.splitlines()[0])
    parser.add_argument("environment")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", type=int, help="the version to serve")
    which.add_argument(
        "--latest-approved", action="store_true", help="the registry's newest Approved version"
    )
    parser.add_argument("--check", action="store_true", help="refuse a version the registry has not Approved")
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
    args = parser.parse_args(argv)
    if args.version is not None and args.version < 1:
        parser.error("--version: versions start at 1")
    client = None
    if args.latest_approved or args.check:
        import boto3

        region = load_config(args.config).environment(args.environment).region
        client = boto3.client("sagemaker", region_name=region)
    try:
        old, new = promote(
            args.config, args.environment, version=args.version, client=client, check=args.check
        )
    except (PromotionError, ConfigError) as err:
        print(f"promote: {err}", file=sys.stderr)
        return 1
    name = str(args.config)
    sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), name, name))
    if old == new:
        print(f"environments.{args.environment} already serves that version")
    elif not args.dry_run:
        write_text(args.config, new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
