"""python -m workflow.local_runner: run a definition, or look at the local registry.

run      --definition FILE --spec FILE [--root .runs] [--param NAME=VALUE ...] [--no-cache]
registry list GROUP | approve GROUP VERSION | reject GROUP VERSION   [--root .runs]
serve    --model GROUP/VERSION|GROUP/latest|PATH [--port 8080] [--workers 2] [--capture-percent 100]
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from pipeline_steps.common.contract import ConfigError
from workflow.cli import add_debug_flag, run_cli
from workflow.local_runner.local_values import local_values
from workflow.local_runner.registry import LocalModelRegistry
from workflow.local_runner.runner import ExecutionResult, LocalPipelineRunner, fill_placeholders
from workflow.local_runner.storage import LocalS3


def parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--param {pair!r}: expected NAME=VALUE")
        params[name] = value
    return params


def run_definition(
    definition_file: Path, spec: Path, root: Path, params: dict[str, str], *, use_cache: bool = True
) -> ExecutionResult:
    s3 = LocalS3(root)
    for flag, path in (("--definition", definition_file), ("--spec", spec)):
        if not path.is_file():
            raise ConfigError(f"{flag} {path}: no such file")
    text = definition_file.read_text()
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--definition {definition_file}: not valid JSON: {err}") from None
    definition = fill_placeholders(text, local_values(s3, spec))
    name = definition_file.stem
    return LocalPipelineRunner(definition, root, pipeline_name=name, use_cache=use_cache).run(params)


def serve_model(args: argparse.Namespace, root: Path) -> int:
    """Runs the server in the foreground until Ctrl-C or SIGTERM; captures to the local S3."""
    from workflow.local_runner.endpoint import EndpointError, LocalEndpoint, capture_dir, resolve_model

    try:
        model, group, version = resolve_model(args.model, root)
    except EndpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    name = args.endpoint_name or group
    endpoint = LocalEndpoint(
        model,
        endpoint_name=name,
        model_version=version,
        port=args.port,
        workers=args.workers,
        capture_dir=capture_dir(LocalS3(root)),
        capture_percent=args.capture_percent,
        s3=LocalS3(root),
    )
    print(
        f"endpoint {name} (AllTraffic) serving {version} on http://127.0.0.1:{args.port}; Ctrl-C stops it",
        file=sys.stderr,
    )
    try:
        return endpoint.proc.wait()
    except KeyboardInterrupt:
        return endpoint.stop()


PROG = "python -m workflow.local_runner"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", default=".runs", help="local run folder (S3 stand-in, executions, registry)"
    )
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute a pipeline definition JSON")
    run.add_argument("--definition", required=True, type=Path)
    run.add_argument("--spec", required=True, type=Path, help="feature spec placed at ${FeatureSpecUri}")
    run.add_argument("--param", action="append", default=[], help="pipeline parameter NAME=VALUE")
    run.add_argument("--no-cache", action="store_true")
    serve = sub.add_parser("serve", help="serve a registered model version as a local endpoint")
    serve.add_argument("--model", required=True, help="<group>/<version>, <group>/latest, or a model path")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--endpoint-name", help="default: the model package group's name")
    serve.add_argument("--capture-percent", type=float, default=100.0, help="data capture sampling, 0 = off")
    reg = sub.add_parser("registry", help="list, approve or reject local model versions")
    reg.add_argument("action", choices=("list", "approve", "reject"))
    reg.add_argument("group")
    reg.add_argument("version", nargs="?", type=int)
    reg.add_argument("--by", default=None, help="who approves or rejects (default: the OS user)")
    reg.add_argument("--reason", default="local CLI", help="why, kept in the approval history")
    args = parser.parse_args(argv)
    root = Path(args.root)

    if args.command == "run":
        result = run_definition(
            args.definition, args.spec, root, parse_params(args.param), use_cache=not args.no_cache
        )
        print(
            json.dumps(
                {
                    "execution_id": result.execution_id,
                    "status": result.status,
                    "failure": result.failure.message if result.failure else None,
                    "registered": (result.registered or {}).get("ModelPackageArn"),
                },
                indent=2,
            )
        )
        return 0 if result.status == "Succeeded" else 1

    if args.command == "serve":
        return serve_model(args, root)

    registry = LocalModelRegistry(root / "registry")
    if args.action == "list":
        for package in registry.versions(args.group):
            meta = package.get("CustomerMetadataProperties", {})
            print(
                f"{package['ModelPackageVersion']:>4}  {package['ModelApprovalStatus']:<22} "
                f"auc={meta.get('auc', '?')}  created={package['CreationTime']}"
            )
        return 0
    if args.version is None:
        parser.error(f"registry {args.action} needs a VERSION")
    status = "Approved" if args.action == "approve" else "Rejected"
    by = args.by or f"{getpass.getuser()} (local CLI)"
    package = registry.update_approval(args.group, args.version, status, description=args.reason, by=by)
    print(f"{args.group} version {args.version}: {package['ModelApprovalStatus']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
