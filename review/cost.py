"""Monthly cost estimate of one environment, from its synthesized templates and config.

Read from the templates: endpoint variants (instance hours at the autoscaling minimum and
maximum, serverless memory), the SageMaker pipeline's jobs (instance types and counts, spot,
tuning size), monitoring schedules, feature groups (online store), buckets, interface VPC
endpoints per AZ, NAT gateways, KMS keys, log groups, alarms and dashboards.  Read from the
config: how often the pipeline runs (`schedules.retraining`) and whether the environment serves
by batch transform.  Usage the templates cannot tell comes from `config/review.yaml`
(`CostAssumptions`); prices from the dated `review/prices.yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from review.assembly import StackTemplate
from review.intrinsics import as_list, render
from review.schedules import ScheduleError, runs_per_month
from review.serving import variants
from review.settings import CostAssumptions

PRICES_PATH = Path(__file__).with_name("prices.yaml")
LEFT_OUT = (
    "data transfer and per-GB data processing (endpoints, VPC endpoints, capture)",
    "S3 requests, ECR image storage, CodePipeline/CodeBuild in the tooling account",
    "CloudWatch metrics and log storage beyond ingestion, SNS and EventBridge",
    "taxes, free tiers, savings plans and reserved capacity",
)


class PriceError(KeyError):
    pass


@dataclass(frozen=True)
class PriceTable:
    date: str
    currency: str
    regions: dict[str, dict[str, Any]]

    def region(self, region: str) -> dict[str, Any]:
        if region not in self.regions:
            raise PriceError(
                f"no prices for region {region!r} in {PRICES_PATH.name} (has {sorted(self.regions)})"
            )
        return self.regions[region]

    def instance(self, region: str, instance_type: str) -> float:
        table = self.region(region)["sagemaker_instance_hour"]
        if instance_type not in table:
            raise PriceError(f"no {region} price for {instance_type} in {PRICES_PATH.name}")
        return float(table[instance_type])


def load_prices(path: Path = PRICES_PATH) -> PriceTable:
    raw = yaml.safe_load(Path(path).read_text())
    return PriceTable(str(raw["date"]), str(raw["currency"]), raw["regions"])


@dataclass(frozen=True)
class CostLine:
    category: str
    item: str
    low: float  # monthly, at the autoscaling minimum
    high: float  # monthly, at the autoscaling maximum


@dataclass
class EnvironmentCost:
    environment: str
    region: str
    lines: list[CostLine] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)  # what had no price (named in the report)

    @property
    def low(self) -> float:
        return sum(line.low for line in self.lines)

    @property
    def high(self) -> float:
        return sum(line.high for line in self.lines)

    def by_category(self) -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        for line in self.lines:
            low, high = out.get(line.category, (0.0, 0.0))
            out[line.category] = (low + line.low, high + line.high)
        return out


def estimate(
    environment: str,
    stacks: list[StackTemplate],
    raw_config: dict[str, Any] | None,
    assumptions: CostAssumptions,
    prices: PriceTable,
) -> EnvironmentCost:
    region = stacks[0].region if stacks else ""
    cost = EnvironmentCost(environment, region)
    try:
        p = prices.region(region)
    except PriceError as err:
        cost.unpriced.append(str(err.args[0]))
        return cost
    a, hours = assumptions, assumptions.hours_per_month
    env_config = ((raw_config or {}).get("environments") or {}).get(environment) or {}

    def add(category: str, item: str, low: float, high: float | None = None) -> None:
        cost.lines.append(CostLine(category, item, round(low, 2), round(low if high is None else high, 2)))

    def instance(instance_type: str) -> float | None:
        try:
            return prices.instance(region, instance_type)
        except PriceError as err:
            cost.unpriced.append(str(err.args[0]))
            return None

    for stack in stacks:
        resources = stack.template.get("Resources") or {}
        for v in variants(stack.path, stack.template):
            label = f"{v.endpoint_config}/{v.name}"
            if v.kind == "serverless":
                gb_seconds = (
                    a.serverless_invocations_per_month
                    * a.serverless_seconds_per_invocation
                    * v.serverless_memory_mb
                    / 1024
                )
                add(
                    "endpoints",
                    f"{label}: serverless {v.serverless_memory_mb} MB",
                    gb_seconds * p["serverless_gb_second"],
                )
                continue
            rate = instance(v.instance_type or "?")
            if rate is None:
                continue
            low_hours = v.min_capacity * hours
            if v.kind == "async" and v.min_capacity == 0:
                low_hours = a.async_busy_hours_per_month
            add(
                "endpoints",
                f"{label}: {v.kind} {v.min_capacity}-{v.max_capacity} x {v.instance_type}",
                low_hours * rate,
                v.max_capacity * hours * rate,
            )
        for lid, resource in resources.items():
            kind, props = resource.get("Type"), resource.get("Properties") or {}
            if kind == "AWS::SageMaker::Pipeline":
                _pipeline(lid, props, env_config, a, add, instance, cost)
            elif kind == "AWS::SageMaker::MonitoringSchedule":
                _monitoring(lid, props, a, add, instance, cost)
            elif kind == "AWS::SageMaker::FeatureGroup":
                online = (props.get("OnlineStoreConfig") or {}).get("EnableOnlineStore") is True
                if online:
                    add(
                        "feature store",
                        f"{lid}: online store",
                        a.feature_store_write_units_per_month / 1e6 * p["feature_store_write_million_units"]
                        + a.feature_store_read_units_per_month / 1e6 * p["feature_store_read_million_units"]
                        + a.feature_store_online_gb * p["feature_store_online_gb_month"],
                    )
            elif kind == "AWS::S3::Bucket":
                add(
                    "storage",
                    f"{lid}: S3 {a.s3_gb_per_bucket:g} GB",
                    a.s3_gb_per_bucket * p["s3_standard_gb_month"],
                )
            elif kind == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == "Interface":
                azs = max(1, len(as_list(props.get("SubnetIds"))))
                add(
                    "network",
                    f"{lid}: interface endpoint x {azs} AZ",
                    azs * hours * p["vpc_interface_endpoint_az_hour"],
                )
            elif kind == "AWS::EC2::NatGateway":
                add("network", f"{lid}: NAT gateway", hours * p["nat_gateway_hour"])
            elif kind == "AWS::KMS::Key":
                add(
                    "keys",
                    f"{lid}: KMS key",
                    p["kms_key_month"] + a.kms_requests_per_month / 1e4 * p["kms_10k_requests"],
                )
            elif kind == "AWS::Logs::LogGroup":
                add(
                    "monitoring",
                    f"{lid}: logs {a.log_gb_per_group_per_month:g} GB",
                    a.log_gb_per_group_per_month * p["logs_ingest_gb"],
                )
            elif kind == "AWS::CloudWatch::Alarm":
                add("monitoring", f"{lid}: alarm", p["alarm_month"])
            elif kind == "AWS::CloudWatch::Dashboard":
                add("monitoring", f"{lid}: dashboard", p["dashboard_month"])
    endpoint = env_config.get("endpoint") or {}
    instances = env_config.get("instances") or {}
    if endpoint.get("kind") == "batch" and instances.get("endpoint"):
        rate = instance(instances["endpoint"])
        if rate is not None:
            add(
                "endpoints",
                f"batch transform {a.batch_hours_per_month:g} h x {instances['endpoint']}",
                a.batch_hours_per_month * rate,
            )
    return cost


Add = Callable[..., None]  # add(category, item, low, high=None)
Instance = Callable[[str], "float | None"]  # an instance type's hourly price, or None (named as unpriced)


def _pipeline(
    lid: str,
    props: dict[str, Any],
    env_config: dict[str, Any],
    a: CostAssumptions,
    add: Add,
    instance: Instance,
    cost: EnvironmentCost,
) -> None:
    definition = pipeline_definition(props)
    if definition is None:
        cost.unpriced.append(f"{lid}: pipeline definition not readable from the template")
        return
    schedule = (env_config.get("schedules") or {}).get("retraining")
    try:
        runs = runs_per_month(schedule) if schedule else 1.0
    except ScheduleError as err:
        cost.unpriced.append(str(err))
        runs = 1.0
    when = (
        f"{runs:.1f} runs/month ({schedule})"
        if schedule
        else "1 run/month (no retraining schedule in config)"
    )
    for job in pipeline_jobs(definition):
        rate = instance(job.instance_type)
        if rate is None:
            continue
        hours = a.training_hours_per_run if job.kind in ("Training", "Tuning") else a.processing_hours_per_run
        factor = (1 - a.spot_savings) if job.spot else 1.0
        monthly = runs * job.jobs * job.count * hours * rate * factor
        spot = ", spot" if job.spot else ""
        jobs = f"{job.jobs} jobs x " if job.jobs > 1 else ""
        add(
            "pipeline jobs",
            f"{lid}/{job.step}: {jobs}{job.count} x {job.instance_type} x {hours:g} h{spot}, {when}",
            monthly,
        )


def _monitoring(
    lid: str, props: dict[str, Any], a: CostAssumptions, add: Add, instance: Instance, cost: EnvironmentCost
) -> None:
    config = props.get("MonitoringScheduleConfig") or {}
    expression = render((config.get("ScheduleConfig") or {}).get("ScheduleExpression", ""))
    resources = ((config.get("MonitoringJobDefinition") or {}).get("MonitoringResources") or {}).get(
        "ClusterConfig"
    )
    if not resources:
        cost.unpriced.append(f"{lid}: monitoring job definition referenced by name (not priced)")
        return
    try:
        runs = runs_per_month(expression.replace("cron(", "cron(").strip())
    except ScheduleError as err:
        cost.unpriced.append(str(err))
        return
    rate = instance(render(resources.get("InstanceType")))
    if rate is not None:
        count = resources.get("InstanceCount", 1)
        add(
            "monitoring jobs",
            f"{lid}: {runs:.0f} runs x {a.monitoring_hours_per_run:g} h",
            runs * count * a.monitoring_hours_per_run * rate,
        )


@dataclass(frozen=True)
class PipelineJob:
    step: str
    kind: str  # Processing | Training | Tuning
    instance_type: str
    count: int
    jobs: int = 1  # a tuning step's maximum number of training jobs
    spot: bool = False


def pipeline_definition(props: dict[str, Any]) -> dict[str, Any] | None:
    body = (props.get("PipelineDefinition") or {}).get("PipelineDefinitionBody")
    if isinstance(body, dict) and "Fn::Sub" in body:
        sub = body["Fn::Sub"]
        body = sub if isinstance(sub, str) else sub[0]
    if not isinstance(body, str):
        return None
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return None


def pipeline_jobs(definition: dict[str, Any]) -> list[PipelineJob]:
    """Each job step's instances, with pipeline parameters resolved to their defaults."""
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}

    def value(v: Any) -> Any:
        if isinstance(v, dict) and isinstance(v.get("Get"), str) and v["Get"].startswith("Parameters."):
            return defaults.get(v["Get"].removeprefix("Parameters."))
        return v

    jobs = []
    for step in _steps(definition.get("Steps", [])):
        args, kind = step.get("Arguments") or {}, step.get("Type")
        if kind == "Processing":
            cluster = (args.get("ProcessingResources") or {}).get("ClusterConfig") or {}
            jobs.append(
                PipelineJob(
                    step["Name"],
                    kind,
                    str(value(cluster.get("InstanceType"))),
                    int(value(cluster.get("InstanceCount")) or 1),
                )
            )
        elif kind == "Training":
            res = args.get("ResourceConfig") or {}
            spot = bool(value(args.get("EnableManagedSpotTraining")))
            jobs.append(
                PipelineJob(
                    step["Name"],
                    kind,
                    str(value(res.get("InstanceType"))),
                    int(value(res.get("InstanceCount")) or 1),
                    spot=spot,
                )
            )
        elif kind == "Tuning":
            training = args.get("TrainingJobDefinition") or {}
            res = training.get("ResourceConfig") or {}
            limits = (args.get("HyperParameterTuningJobConfig") or {}).get("ResourceLimits") or {}
            jobs.append(
                PipelineJob(
                    step["Name"],
                    kind,
                    str(value(res.get("InstanceType"))),
                    int(value(res.get("InstanceCount")) or 1),
                    jobs=int(value(limits.get("MaxNumberOfTrainingJobs")) or 1),
                    spot=bool(value(training.get("EnableManagedSpotTraining"))),
                )
            )
    return jobs


def _steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps, with condition branches flattened (a job inside If/Else runs at most once)."""
    out = []
    for step in steps:
        out.append(step)
        if step.get("Type") == "Condition":
            args = step.get("Arguments") or {}
            out += _steps(args.get("IfSteps", []) + args.get("ElseSteps", []))
    return out
