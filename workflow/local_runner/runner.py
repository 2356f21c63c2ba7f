"""Executes a pipeline definition JSON locally, step by step, as SageMaker Pipelines would.

Order comes from the data dependencies (`Get: Steps.X...`, property files) and DependsOn;
a Condition step picks its IfSteps or ElseSteps; a Fail step ends the run with its message;
RegisterModel writes to the local model registry.  Every step's outcome is recorded in
<root>/executions/<id>/execution.json, and each job keeps its logs in its own folder.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_steps.common.atomic import write_json
from pipeline_steps.common.contract import ConfigError
from workflow.definition.placeholders import PLACEHOLDER
from workflow.definition.request_check import check_request
from workflow.local_runner import jobs
from workflow.local_runner.cache import StepCache, cache_key
from workflow.local_runner.expressions import Context, evaluate_condition, resolve
from workflow.local_runner.graph import Step, flatten, topological
from workflow.local_runner.jobs import StepFailed
from workflow.local_runner.processing import run_processing
from workflow.local_runner.registry import LocalModelRegistry
from workflow.local_runner.storage import LocalS3
from workflow.local_runner.training import run_training
from workflow.local_runner.tuning import run_tuning

SUPPORTED_TYPES = (
    "Processing",
    "Training",
    "Tuning",
    "Condition",
    "Fail",
    "RegisterModel",
    "Model",
    "Transform",
)


def fill_placeholders(definition_text: str, values: dict[str, str]) -> dict[str, Any]:
    """Replaces ${Name} placeholders; any left unfilled is an error naming them."""
    missing = sorted({m for m in PLACEHOLDER.findall(definition_text) if m not in values})
    if missing:
        raise ConfigError(
            f"definition has placeholders with no local value: {missing}; known: {sorted(values)}"
        )
    return json.loads(PLACEHOLDER.sub(lambda m: values[m.group(1)], definition_text))


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "NotStarted"  # Executing | Succeeded | Failed | Skipped
    cached: bool = False
    seconds: float = 0.0
    message: str = ""
    outcome: str | None = None  # Condition steps: "true" / "false"
    job_dir: str | None = None


@dataclass
class ExecutionResult:
    execution_id: str
    status: str
    steps: dict[str, StepRecord]
    properties: dict[str, Any]
    property_files: dict[str, Path]
    registered: dict[str, Any] | None = None
    failure: StepFailed | None = None
    seconds: float = 0.0
    folder: Path | None = None

    def property(self, path: str) -> Any:
        return self.properties[path]


class LocalPipelineRunner:
    def __init__(
        self,
        definition: dict[str, Any],
        root: Path,
        *,
        pipeline_name: str,
        use_cache: bool = True,
        echo: Callable[[str], None] | None = None,
    ):
        self.definition = definition
        self.root = Path(root)
        self.pipeline_name = pipeline_name
        self.s3 = LocalS3(self.root)
        self.cache = StepCache(self.root)
        self.registry = LocalModelRegistry(self.root / "registry")
        self.use_cache = use_cache
        self.echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        self.steps = flatten(definition)
        self.models: dict[str, dict[str, Any]] = {}  # CreateModel steps' models, by name

    def parameters(self, overrides: dict[str, Any]) -> dict[str, Any]:
        declared = {p["Name"]: p for p in self.definition.get("Parameters", [])}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise ConfigError(f"unknown pipeline parameter(s) {unknown}; the pipeline has {sorted(declared)}")
        values = {}
        for name, param in declared.items():
            raw = overrides.get(name, param.get("DefaultValue"))
            if raw is None:
                raise ConfigError(f"pipeline parameter {name} has no default: give it a value")
            values[name] = _cast(name, param.get("Type", "String"), raw)
        return values

    def run(
        self, overrides: dict[str, Any] | None = None, *, execution_id: str | None = None
    ) -> ExecutionResult:
        started = time.monotonic()
        execution_id = execution_id or _new_execution_id()
        folder = self.root / "executions" / execution_id
        ctx = Context(
            parameters=self.parameters(overrides or {}),
            execution={
                "PipelineExecutionId": execution_id,
                "PipelineName": self.pipeline_name,
                "PipelineExecutionArn": (
                    f"arn:local:sagemaker:::pipeline/{self.pipeline_name}/execution/{execution_id}"
                ),
                "StartDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
                "CurrentDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        records = {s.name: StepRecord(s.name, s.type) for s in self.steps}
        result = ExecutionResult(
            execution_id, "Executing", records, ctx.properties, ctx.property_files, folder=folder
        )
        outcomes: dict[str, bool] = {}
        order = topological(self.steps)
        self.echo(f"pipeline {self.pipeline_name}: execution {execution_id} ({len(order)} steps)")
        try:
            for index, step in enumerate(order, start=1):
                record = records[step.name]
                if step.branch_of and outcomes.get(step.branch_of[0]) != step.branch_of[1]:
                    record.status = "Skipped"
                    continue
                record.status = "Executing"
                self._save(folder, result, ctx)
                self.echo(f"[{index}/{len(order)}] {step.name} ({step.type}) ...")
                t0 = time.monotonic()
                try:
                    self._execute(step, ctx, record, folder, outcomes, result)
                except StepFailed as err:
                    if err.step == step.name:
                        raise
                    raise StepFailed(step.name, err.message, err.log) from err
                except Exception as err:  # an error of the definition or of the runner itself
                    raise StepFailed(step.name, f"{type(err).__name__}: {err}") from err
                finally:
                    record.seconds = round(time.monotonic() - t0, 3)
                record.status = "Succeeded"
                note = " (cached)" if record.cached else ""
                note += f" -> {record.outcome}" if record.outcome else ""
                self.echo(f"[{index}/{len(order)}] {step.name} done in {record.seconds:.1f} s{note}")
            result.status = "Succeeded"
        except StepFailed as failure:
            records[failure.step].status = "Failed"
            records[failure.step].message = failure.message
            result.status = "Failed"
            result.failure = failure
            where = f" (log: {failure.log})" if failure.log else ""
            self.echo(f"step {failure.step} failed{where}:\n  {failure.message}")
        except KeyboardInterrupt:
            result.status = "Stopped"
            self._save(folder, result, ctx)
            raise
        result.seconds = round(time.monotonic() - started, 3)
        self._save(folder, result, ctx)
        return result

    def _execute(
        self,
        step: Step,
        ctx: Context,
        record: StepRecord,
        folder: Path,
        outcomes: dict[str, bool],
        result: ExecutionResult,
    ) -> None:
        body = step.body
        if step.type in ("Processing", "Training", "Tuning"):
            self._run_job(step, ctx, record, folder)
        elif step.type == "Condition":
            outcome = all(evaluate_condition(c, ctx) for c in body["Arguments"]["Conditions"])
            outcomes[step.name] = outcome
            record.outcome = "true" if outcome else "false"
            ctx.properties[f"Steps.{step.name}.Outcome"] = outcome
        elif step.type == "Fail":
            message = resolve(body["Arguments"].get("ErrorMessage", ""), ctx)
            raise StepFailed(step.name, str(message))
        elif step.type == "RegisterModel":
            request = resolve(body["Arguments"], ctx)
            check_request(step.type, request)
            containers = request.get("InferenceSpecification", {}).get("Containers", [])
            archive = self.s3.path(containers[0]["ModelDataUrl"]) if containers else None
            package = self.registry.register(request, model_archive=archive)
            ctx.properties[f"Steps.{step.name}.ModelPackageArn"] = package["ModelPackageArn"]
            result.registered = package
            record.message = (
                f"{package['ModelPackageGroupName']} version {package['ModelPackageVersion']} "
                f"({package['ModelApprovalStatus']})"
            )
        elif step.type in ("Model", "Transform"):
            self._run_model_or_transform(step, ctx, record, folder)
        else:
            raise StepFailed(
                step.name, f"step type {step.type!r} cannot run locally; supported: {SUPPORTED_TYPES}"
            )

    def _run_job(self, step: Step, ctx: Context, record: StepRecord, folder: Path) -> None:
        body = step.body
        args = resolve(body["Arguments"], ctx)
        check_request(step.type, args)
        module = jobs.step_module(step.type, args)
        key = cache_key(step.type, _symbolic(body["Arguments"], ctx), args, module, self.s3)
        cache_config = body.get("CacheConfig", {})
        entry = None
        if self.use_cache and cache_config.get("Enabled"):
            entry = self.cache.lookup(step.name, key, cache_config.get("ExpireAfter"), self.s3)
        if entry is not None:
            properties = entry["properties"]
            record.cached = True
        else:
            job_dir = folder / step.name
            record.job_dir = str(job_dir)
            # SageMaker Pipelines names jobs pipelines-<execution>-<step>-...; so do we.
            job_name = f"pipelines-{ctx.execution['PipelineExecutionId'][-8:]}-{step.name}"
            if step.type == "Processing":
                properties = run_processing(step.name, args, job_dir, self.s3)
            elif step.type == "Training":
                properties = run_training(step.name, args, job_dir, self.s3, job_name)
            else:
                properties = run_tuning(step.name, args, job_dir, self.s3, job_name)
            if cache_config.get("Enabled"):
                self.cache.store(step.name, key, properties, ctx.execution["PipelineExecutionId"])
        for path, value in properties.items():
            ctx.properties[f"Steps.{step.name}.{path}"] = value
        for pf in body.get("PropertyFiles", []):
            uri = properties[f"ProcessingOutputConfig.Outputs['{pf['OutputName']}'].S3Output.S3Uri"]
            ctx.property_files[f"Steps.{step.name}.PropertyFiles.{pf['PropertyFileName']}"] = (
                self.s3.path(uri) / pf["FilePath"]
            )

    def _run_model_or_transform(self, step: Step, ctx: Context, record: StepRecord, folder: Path) -> None:
        """CreateModel and batch transform, through the serving container's server.  A Transform
        step with CacheConfig is cached like a job (cache.py), its model keyed by content."""
        from workflow.local_runner.transform import run_create_model, run_transform, transform_cache_key

        args = resolve(step.body["Arguments"], ctx)
        check_request(step.type, args)
        suffix = f"{ctx.execution['PipelineExecutionId'][-8:]}-{step.name}"
        if step.type == "Model":
            properties = run_create_model(step.name, args, self.models, f"pipelines-{suffix}", self.registry)
        else:
            cache_config = step.body.get("CacheConfig", {})
            key = entry = None
            if cache_config.get("Enabled") and args["ModelName"] in self.models:
                symbolic = _symbolic(step.body["Arguments"], ctx)
                key = transform_cache_key(symbolic, args, self.models[args["ModelName"]], self.s3)
                if self.use_cache:
                    entry = self.cache.lookup(step.name, key, cache_config.get("ExpireAfter"), self.s3)
            if entry is not None:
                properties = dict(entry["properties"])
                record.cached = True
            else:
                job_dir = folder / step.name
                record.job_dir = str(job_dir)
                properties = run_transform(
                    step.name, args, job_dir, self.s3, self.models, f"pipelines-{suffix}"
                )
                if key is not None:
                    self.cache.store(step.name, key, properties, ctx.execution["PipelineExecutionId"])
            summary = properties.pop("LocalSummary")
            record.message = (
                f"{summary['output_lines']:,} rows scored from {summary['objects']} object(s) "
                f"in {summary['requests']} request(s)"
            )
        for path, value in properties.items():
            ctx.properties[f"Steps.{step.name}.{path}"] = value

    def _save(self, folder: Path, result: ExecutionResult, ctx: Context) -> None:
        write_json(
            folder / "execution.json",
            {
                "execution_id": result.execution_id,
                "pipeline": self.pipeline_name,
                "status": result.status,
                "parameters": ctx.parameters,
                "steps": {name: vars(r) for name, r in result.steps.items()},
                "failure": result.failure.message if result.failure else None,
                "registered": result.registered,
            },
        )


def _symbolic(arguments: dict[str, Any], ctx: Context) -> Any:
    """A step's arguments resolved with the execution's ids left symbolic: the cache key's view."""
    ctx.symbolic_execution = True
    try:
        return resolve(arguments, ctx)
    finally:
        ctx.symbolic_execution = False


def _cast(name: str, kind: str, raw: Any) -> Any:
    try:
        if kind == "Integer":
            return int(raw)
        if kind == "Float":
            return float(raw)
        if kind == "Boolean":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "false"):
                return str(raw).lower() == "true"
            raise ValueError(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"pipeline parameter {name}: {raw!r} is not a valid {kind}") from None


def _new_execution_id() -> str:
    return datetime.now(UTC).strftime("local-%Y%m%dT%H%M%S-") + secrets.token_hex(3)
