"""Typed, validated project configuration (config/environments.yaml).

Every value is checked when the app starts.  A wrong value raises ConfigError with a message
that names the field path, the value and what is allowed, for example
``config error: environments.prod.instances.training = 'ml.m5.huge': expected one of the 225
    training instance types in botocore's SageMaker model (closest: [...])``.
Unknown keys are errors too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import instance_types
from config.paths import REPO_ROOT
from config.serving import KINDS as ENDPOINT_KINDS  # noqa: F401  (re-exported)
from config.serving import Endpoint, endpoint_or_none
from pipeline_steps.common.contract import ConfigError

# Real region names (commercial, GovCloud, China); a typo must not reach CloudFormation.
REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
)
# Config field -> the SageMaker use whose instance types it may take (config/instance_types.py).
INSTANCE_USES = {
    "processing": "processing",
    "training": "training",
    "evaluation": "processing",
    "endpoint": "hosting",
}
APPROVALS = {"auto": "Approved", "manual": "PendingManualApproval"}
# The Preprocess step's engine (README: "Choosing the preparation engine"): the same SQL plan
# run in the step's own container, or on AWS's Spark processing image across the instances.
PREPROCESS_ENGINES = ("embedded", "spark")
VPC_MODES = ("create", "import")
LONGEST_BUCKET_PURPOSE = "artifacts-replica"  # see stacks/data_stack.py

_ACCOUNT = re.compile(r"^\d{12}$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_CONNECTION = re.compile(
    r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
_RATE = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)$")
_TAG_KEY = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_PREFIX_LIST = re.compile(r"^pl-[0-9a-f]{8,17}$")
_IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):(role|user)/[\w+=,.@/-]{1,512}$")
REMOVAL_POLICIES = ("retain", "destroy")
CDK_QUALIFIER = "hnb659fds"  # the CDK bootstrap's default qualifier (cdk bootstrap --qualifier)
# The retention periods CloudWatch Logs accepts (RetentionInDays).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def partition_of(region: str) -> str:
    """The AWS partition a region belongs to."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def cfn_execution_role_arn(account: str, region: str) -> str:
    """The CDK bootstrap's CloudFormation execution role in that account and region."""
    return (
        f"arn:{partition_of(region)}:iam::{account}:role/cdk-{CDK_QUALIFIER}-cfn-exec-role-{account}-{region}"
    )


@dataclass(frozen=True)
class Tooling:
    account: str
    region: str
    connection_arn: str
    repository: str
    branch: str
    # False (default): the pipeline never rewrites itself, so a commit cannot remove the prod
    # approval; pipeline changes are deployed by `cdk deploy Delivery` from a reviewed commit.
    self_mutation: bool = False
    termination_protection: bool = True

    @property
    def cfn_execution_role_arn(self) -> str:
        """The CDK bootstrap role CloudFormation deploys the delivery stack with."""
        return cfn_execution_role_arn(self.account, self.region)


@dataclass(frozen=True)
class VpcConfig:
    mode: str  # create | import
    cidr: str | None = None  # create
    max_azs: int = 2  # create
    vpc_id: str | None = None  # import
    subnet_ids: tuple[str, ...] = ()  # import: private subnets for SageMaker
    availability_zones: tuple[str, ...] = ()  # import: one per subnet id
    # The region's AWS-managed S3 prefix list (com.amazonaws.<region>.s3): the SageMaker security
    # group's only egress besides the interface endpoints.  A lookup would be an AWS call at synth.
    s3_prefix_list_id: str = ""
    endpoint_security_group_id: str | None = None  # import: the security group of its interface endpoints

    def zones(self, region: str) -> list[str]:
        """The VPC's availability zones: the imported ones, or `<region>a`, `b`, ... (max_azs)."""
        if self.mode == "import":
            return list(self.availability_zones)
        return [f"{region}{letter}" for letter in "abcdef"[: self.max_azs]]


@dataclass(frozen=True)
class Instances:
    processing: str
    training: str
    evaluation: str
    endpoint: str


@dataclass(frozen=True)
class InstanceCounts:
    processing: int = 1
    training: int = 1
    evaluation: int = 1
    endpoint: int = 1


@dataclass(frozen=True)
class Preprocess:
    # embedded: one process per instance on the step's own image; spark: one Spark application
    # over all `instance_counts.processing` instances, on AWS's Spark processing image.
    engine: str = "embedded"

    @property
    def spark(self) -> bool:
        return self.engine == "spark"


@dataclass(frozen=True)
class Tuning:
    enabled: bool = False
    max_jobs: int = 4
    max_parallel: int = 2


@dataclass(frozen=True)
class Training:
    spot: bool = False
    tuning: Tuning = field(default_factory=Tuning)


@dataclass(frozen=True)
class Schedules:
    retraining: str
    monitoring: str


@dataclass(frozen=True)
class Thresholds:
    auc_floor: float
    drift_psi: float  # PSI at which a feature (or the prediction) counts as drifted
    drift_psi_features: dict[str, float] = field(default_factory=dict)  # per-feature overrides
    drift_share: float = 0.3  # alarm (and retrain) when more than this share of features drift


@dataclass(frozen=True)
class Monitoring:
    model_monitor: bool = False  # also create Model Monitor schedules (accounts that still have it)
    retraining_cooldown_hours: int = 24  # at most one retraining start per cooldown
    label_lookback_hours: int = 168  # labels that arrived this long before the window are joined too
    labeling_workteam: bool = False  # a private Ground Truth work team for human review of borderline cases


@dataclass(frozen=True)
class Retention:
    capture_days: int
    monitoring_days: int
    log_days: int = 365  # CloudWatch log groups the environment declares
    noncurrent_version_days: int = 90  # old object versions in versioned buckets


@dataclass(frozen=True)
class Protection:
    """What a stack deletion or a careless deploy cannot take away."""

    removal_policy: str = "retain"  # retain | destroy: stateful resources on stack deletion
    termination_protection: bool = True

    @property
    def retain(self) -> bool:
        return self.removal_policy == "retain"


@dataclass(frozen=True)
class Environment:
    name: str
    account: str
    region: str
    vpc: VpcConfig
    instances: Instances
    instance_counts: InstanceCounts
    training: Training
    endpoint: Endpoint | None  # None: the environment serves no model yet (config/serving.py)
    schedules: Schedules
    thresholds: Thresholds
    approval: str  # auto | manual
    model_package_version: int | None
    retention: Retention
    replication: bool
    tags: dict[str, str]
    protection: Protection = field(default_factory=Protection)
    # IAM roles/users of this account that administer (never use) the environment's keys,
    # besides the CloudFormation execution role that deploys them.
    key_admins: tuple[str, ...] = ()
    monitoring: Monitoring = field(default_factory=Monitoring)
    preprocess: Preprocess = field(default_factory=Preprocess)

    @property
    def cfn_execution_role_arn(self) -> str:
        """The CDK bootstrap role CloudFormation deploys this environment's stacks with."""
        return cfn_execution_role_arn(self.account, self.region)

    @property
    def manual_approval(self) -> bool:
        return self.approval == "manual"

    @property
    def partition(self) -> str:
        """The AWS partition of this environment's region."""
        return partition_of(self.region)

    @property
    def model_approval_status(self) -> str:
        """The Model Registry status a new model package gets in this environment."""
        return APPROVALS[self.approval]


@dataclass(frozen=True)
class ProjectConfig:
    project: str
    feature_spec: str  # path relative to the repository root
    tooling: Tooling
    environments: tuple[Environment, ...]  # in file order: the delivery order

    @property
    def feature_spec_path(self) -> Path:
        """The feature spec file: the project's default spec everywhere (CDK, demo, CLI)."""
        return REPO_ROOT / self.feature_spec

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)

    @property
    def environment_names(self) -> list[str]:
        return [e.name for e in self.environments]

    def prefix(self, env: Environment) -> str:
        """`<project>-<env>`: the start of every resource name in that environment."""
        return f"{self.project}-{env.name}"

    def bucket_name(self, env: Environment, purpose: str) -> str:
        """Deterministic, globally unique bucket name: `<project>-<env>-<purpose>-<account>-<region>`."""
        return f"{self.prefix(env)}-{purpose}-{env.account}-{env.region}"


class _Node:
    """A mapping being parsed, with its dotted path for error messages."""

    def __init__(self, raw: Any, path: str, allowed: set[str]):
        if not isinstance(raw, dict):
            raise ConfigError(f"config error: {path or '<top level>'} = {raw!r}: expected a mapping")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            where = f"{path}.{unknown[0]}" if path else str(unknown[0])
            raise ConfigError(f"config error: {where}: unknown key; expected one of {sorted(allowed)}")
        self.raw, self.path = raw, path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"config error: {self.where(key)} = {value!r}: expected {expected}")

    def get(self, key: str, default: Any = ...) -> Any:
        if key not in self.raw:
            if default is ...:
                raise ConfigError(f"config error: {self.where(key)}: is required")
            return default
        return self.raw[key]

    def str_(self, key: str, pattern: re.Pattern | None = None, what: str = "", default: Any = ...) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise self.fail(key, value, what or "a string")
        return value

    def choice(self, key: str, allowed: tuple[Any, ...] | dict[str, str], default: Any = ...) -> Any:
        value = self.get(key, default)
        if value not in allowed:
            raise self.fail(key, value, f"one of {list(allowed)}")
        return value

    def instance_type(self, key: str, use: str, default: Any = ...) -> str:
        value = self.get(key, default)
        expected = instance_types.problem(value, use)
        if expected:
            raise self.fail(key, value, expected)
        return value

    def int_(self, key: str, lo: int, hi: int, default: Any = ...) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(key, value, f"an integer in [{lo}, {hi}]")
        return value

    def bool_(self, key: str, default: Any = ...) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, value, "true or false")
        return value

    def child(self, key: str, allowed: set[str], default: Any = ...) -> _Node:
        return _Node(self.get(key, default), self.where(key), allowed)


def parse_config(raw: Any) -> ProjectConfig:
    top = _Node(raw, "", {"project", "feature_spec", "tooling", "environments"})
    tooling = _parse_tooling(
        top.child(
            "tooling",
            {
                "account",
                "region",
                "connection_arn",
                "repository",
                "branch",
                "self_mutation",
                "termination_protection",
            },
        )
    )
    envs_raw = top.get("environments")
    if not isinstance(envs_raw, dict) or not envs_raw:
        raise top.fail("environments", envs_raw, "a mapping of environment name to settings")
    envs = []
    for name, body in envs_raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise top.fail(
                f"environments.{name}", name, "a name of lower-case letters, digits and -, at most 20"
            )
        envs.append(_parse_environment(name, body))
    if "prod" in envs_raw and list(envs_raw)[-1] != "prod":
        raise top.fail("environments", list(envs_raw), "prod last: the pipeline deploys in this order")
    project = top.str_("project", _NAME, "a name of lower-case letters, digits and -, at most 20")
    for env in envs:  # S3 bucket names are at most 63 characters
        longest = f"{project}-{env.name}-{LONGEST_BUCKET_PURPOSE}-{env.account}-{env.region}"
        if len(longest) > 63:
            raise top.fail(
                f"environments.{env.name}",
                env.name,
                f"a shorter project/environment name: bucket name {longest!r} exceeds 63 characters",
            )
    return ProjectConfig(
        project=project,
        feature_spec=top.str_("feature_spec", re.compile(r"^[^/].*\.(ya?ml|json)$"), "a relative .yaml path"),
        tooling=tooling,
        environments=tuple(envs),
    )


def _parse_tooling(n: _Node) -> Tooling:
    return Tooling(
        account=n.str_("account", _ACCOUNT, "a 12-digit account id as a quoted string"),
        region=n.choice("region", REGIONS),
        connection_arn=n.str_("connection_arn", _CONNECTION, "a CodeStar/CodeConnections connection ARN"),
        repository=n.str_("repository", _REPO, "'owner/name'"),
        branch=n.str_("branch", re.compile(r"^[\w./-]+$"), "a branch name"),
        self_mutation=n.bool_("self_mutation", False),
        termination_protection=n.bool_("termination_protection", True),
    )


_ENV_KEYS = {
    "account",
    "region",
    "vpc",
    "instances",
    "instance_counts",
    "training",
    "endpoint",
    "schedules",
    "thresholds",
    "approval",
    "model_package_version",
    "retention",
    "replication",
    "tags",
    "protection",
    "key_admins",
    "monitoring",
    "preprocess",
}


def _parse_environment(name: str, raw: Any) -> Environment:
    n = _Node(raw, f"environments.{name}", _ENV_KEYS)
    inst = n.child("instances", {"processing", "training", "evaluation", "endpoint"})
    counts = n.child("instance_counts", {"processing", "training", "evaluation", "endpoint"}, {})
    training = n.child("training", {"spot", "tuning"}, {})
    tuning = training.child("tuning", {"enabled", "max_jobs", "max_parallel"}, {})
    max_jobs = tuning.int_("max_jobs", 1, 500, 4)
    max_parallel = tuning.int_("max_parallel", 1, 100, 2)
    if max_parallel > max_jobs:
        raise tuning.fail("max_parallel", max_parallel, f"at most max_jobs ({max_jobs})")
    schedules = n.child("schedules", {"retraining", "monitoring"})
    thresholds = n.child("thresholds", {"auc_floor", "drift_psi", "drift_psi_features", "drift_share"})
    monitoring = n.child(
        "monitoring",
        {"model_monitor", "retraining_cooldown_hours", "label_lookback_hours", "labeling_workteam"},
        {},
    )
    psi_features = thresholds.get("drift_psi_features", {})
    if not isinstance(psi_features, dict) or not all(
        isinstance(k, str) and not isinstance(v, bool) and isinstance(v, (int, float)) and v > 0
        for k, v in psi_features.items()
    ):
        raise thresholds.fail("drift_psi_features", psi_features, "a mapping of feature name to a PSI > 0")
    retention = n.child(
        "retention", {"capture_days", "monitoring_days", "log_days", "noncurrent_version_days"}
    )
    protection = n.child("protection", {"removal_policy", "termination_protection"}, {})
    preprocess = n.child("preprocess", {"engine"}, {})
    version = n.get("model_package_version", None)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise n.fail("model_package_version", version, "null or an integer >= 1")
    account = n.str_("account", _ACCOUNT, "a 12-digit account id as a quoted string")
    endpoint = endpoint_or_none(
        n,
        "endpoint",
        account=account,
        initial_instance_count=counts.int_("endpoint", 1, 100, 1),
        instance_type=inst.raw.get("endpoint"),
        instance_field=inst.where("endpoint"),
        version=version,
        version_field=n.where("model_package_version"),
    )
    return Environment(
        name=name,
        account=account,
        region=n.choice("region", REGIONS),
        vpc=_parse_vpc(
            n.child(
                "vpc",
                {
                    "mode",
                    "cidr",
                    "max_azs",
                    "vpc_id",
                    "subnet_ids",
                    "availability_zones",
                    "s3_prefix_list_id",
                    "endpoint_security_group_id",
                },
            )
        ),
        instances=Instances(**{k: inst.instance_type(k, use) for k, use in INSTANCE_USES.items()}),
        instance_counts=InstanceCounts(
            **{k: counts.int_(k, 1, 100, 1) for k in ("processing", "training", "evaluation", "endpoint")}
        ),
        training=Training(
            spot=training.bool_("spot", False),
            tuning=Tuning(
                enabled=tuning.bool_("enabled", False), max_jobs=max_jobs, max_parallel=max_parallel
            ),
        ),
        endpoint=endpoint,
        schedules=Schedules(**{k: _schedule(schedules, k) for k in ("retraining", "monitoring")}),
        thresholds=Thresholds(
            auc_floor=_number(thresholds, "auc_floor", lambda v: 0 < v < 1, "a number in (0, 1)"),
            drift_psi=_number(thresholds, "drift_psi", lambda v: v > 0, "a number > 0"),
            drift_psi_features={k: float(v) for k, v in psi_features.items()},
            drift_share=_number(thresholds, "drift_share", lambda v: 0 < v <= 1, "a number in (0, 1]", 0.3),
        ),
        approval=n.choice("approval", APPROVALS),
        model_package_version=version,
        retention=Retention(
            capture_days=retention.int_("capture_days", 1, 3650),
            monitoring_days=retention.int_("monitoring_days", 1, 3650),
            log_days=retention.choice("log_days", LOG_RETENTION_DAYS, 365),
            noncurrent_version_days=retention.int_("noncurrent_version_days", 1, 3650, 90),
        ),
        replication=n.bool_("replication", False),
        tags=_tags(n),
        protection=Protection(
            removal_policy=protection.choice("removal_policy", REMOVAL_POLICIES, "retain"),
            termination_protection=protection.bool_("termination_protection", True),
        ),
        key_admins=_key_admins(n, account),
        monitoring=Monitoring(
            model_monitor=monitoring.bool_("model_monitor", False),
            retraining_cooldown_hours=monitoring.int_("retraining_cooldown_hours", 1, 24 * 90, 24),
            label_lookback_hours=monitoring.int_("label_lookback_hours", 0, 24 * 365, 168),
            labeling_workteam=monitoring.bool_("labeling_workteam", False),
        ),
        preprocess=Preprocess(engine=preprocess.choice("engine", PREPROCESS_ENGINES, "embedded")),
    )


def _parse_vpc(n: _Node) -> VpcConfig:
    mode = n.choice("mode", VPC_MODES)
    if mode == "create":
        for key in ("vpc_id", "subnet_ids", "availability_zones", "endpoint_security_group_id"):
            if key in n.raw:
                raise n.fail(key, n.raw[key], "no value: only mode 'import' takes it")
        cidr = n.get("cidr")
        try:
            net = ipaddress.IPv4Network(cidr)
            ok = isinstance(cidr, str) and 16 <= net.prefixlen <= 24 and net.is_private
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise n.fail("cidr", cidr, "a private IPv4 CIDR between /16 and /24, e.g. '10.20.0.0/16'")
        return VpcConfig(
            mode=mode, cidr=cidr, max_azs=n.int_("max_azs", 1, 6, 2), s3_prefix_list_id=_prefix_list(n)
        )
    for key in ("cidr", "max_azs"):
        if key in n.raw:
            raise n.fail(key, n.raw[key], "no value: only mode 'create' takes it")
    subnets, azs = n.get("subnet_ids"), n.get("availability_zones")
    if (
        not isinstance(subnets, list)
        or not subnets
        or not all(isinstance(s, str) and _SUBNET_ID.match(s) for s in subnets)
    ):
        raise n.fail("subnet_ids", subnets, "a non-empty list of 'subnet-...' ids")
    if not isinstance(azs, list) or len(azs) != len(subnets) or not all(isinstance(a, str) for a in azs):
        raise n.fail("availability_zones", azs, f"a list of {len(subnets)} zone names, one per subnet id")
    return VpcConfig(
        mode=mode,
        vpc_id=n.str_("vpc_id", _VPC_ID, "'vpc-' and 8 or 17 hex digits"),
        subnet_ids=tuple(subnets),
        availability_zones=tuple(azs),
        s3_prefix_list_id=_prefix_list(n),
        endpoint_security_group_id=n.str_(
            "endpoint_security_group_id", _SECURITY_GROUP, "the 'sg-...' id of the VPC's interface endpoints"
        ),
    )


def _prefix_list(n: _Node) -> str:
    return n.str_(
        "s3_prefix_list_id",
        _PREFIX_LIST,
        "the region's S3 prefix list id, 'pl-' and 8 or 17 hex digits (aws ec2 describe-managed-prefix-lists "
        "--filters Name=prefix-list-name,Values=com.amazonaws.<region>.s3)",
    )


def _key_admins(n: _Node, account: str) -> tuple[str, ...]:
    admins = n.get("key_admins", [])
    if not isinstance(admins, list) or not all(isinstance(a, str) for a in admins):
        raise n.fail("key_admins", admins, "a list of IAM role or user ARNs")
    for arn in admins:
        match = _IAM_PRINCIPAL.match(arn)
        if not match or match.group(1) != account:
            raise n.fail(
                "key_admins",
                admins,
                f"IAM role or user ARNs in this environment's account {account}; not {arn!r}",
            )
    return tuple(admins)


def _schedule(n: _Node, key: str) -> str:
    value = n.get(key)
    if not isinstance(value, str) or not (_CRON.match(value) or _RATE.match(value)):
        raise n.fail(key, value, "an EventBridge expression: 'cron(m h dom mon dow yr)' or 'rate(N unit)'")
    return value


def _number(n: _Node, key: str, check: Callable[[float], bool], what: str, default: Any = ...) -> float:
    value = n.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not check(value):
        raise n.fail(key, value, what)
    return float(value)


def _tags(n: _Node) -> dict[str, str]:
    tags = n.get("tags", {})
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and _TAG_KEY.match(k) and isinstance(v, str) and len(v) <= 256
        for k, v in tags.items()
    ):
        raise n.fail("tags", tags, "a mapping of tag key to string value")
    return dict(tags)
