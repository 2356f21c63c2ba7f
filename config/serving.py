"""The `endpoint` block of an environment: what the serving stack deploys (config/schema.py
calls `parse_endpoint`).

Rules checked here, each failing with a message that names the field:

- an environment serves a pinned model package version: an `endpoint` block needs
  `model_package_version` (never "whatever is latest at deploy time"); no `endpoint` block (or
  `endpoint: null`) means the environment serves nothing yet;
- SageMaker's own exclusions: serverless endpoints take no VPC config, no network isolation
  and no data capture; rolling updates exclude serverless endpoints; guarded rollouts
  (DeploymentConfig) are for real-time endpoints; only asynchronous endpoints scale to zero
  instances; a serverless endpoint's provisioned concurrency is at most its max concurrency;
- the initial instance count (`instance_counts.endpoint`) lies within the autoscaling range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # schema.py imports this module inside a function: no import cycle at run time
    from config.schema import _Node

# What `endpoint.kind` may be; README "Choosing an endpoint kind" explains each.
KINDS = ("realtime", "serverless", "async", "multi-model", "batch")
INSTANCE_KINDS = ("realtime", "async", "multi-model")  # kinds that run on instances behind an endpoint
STRATEGIES = ("all-at-once", "canary", "linear", "rolling")
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
_ALARM_NAME = re.compile(r"^[\w .:/#+=@,()-]{1,255}$")
_ECR_IMAGE = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$"
)
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]+/$")


@dataclass(frozen=True)
class Autoscaling:
    min_capacity: int = 1
    max_capacity: int = 1
    invocations_per_instance: int = 100  # target tracking on SageMakerVariantInvocationsPerInstance
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60


@dataclass(frozen=True)
class Capture:
    enabled: bool
    sampling_percentage: int = 100


@dataclass(frozen=True)
class Deployment:
    """Blue/green (all at once, canary, linear) or rolling update, with automatic rollback."""

    strategy: str = "all-at-once"
    step_percent: int = 10  # canary size, linear step or rolling batch, in % of capacity
    wait_s: int = 300  # baking time between steps
    termination_wait_s: int = 300  # blue fleet kept after the shift, for a fast rollback
    max_execution_s: int = 3600
    rollback_alarms: tuple[str, ...] = ()  # alarms outside this stack that also roll back


@dataclass(frozen=True)
class Alarms:
    p99_latency_ms: int = 500  # ModelLatency p99
    error_rate_percent: float = 1.0  # 5xx / invocations
    no_invocations_minutes: int | None = None  # alarm when no request for this long (traffic expected)


@dataclass(frozen=True)
class Serverless:
    memory_mb: int = 2048
    max_concurrency: int = 10
    provisioned_concurrency: int = 0


@dataclass(frozen=True)
class AsyncConfig:
    max_concurrent_invocations_per_instance: int = 4
    backlog_per_instance: int = 5  # target of ApproximateBacklogSizePerInstance


@dataclass(frozen=True)
class MultiModel:
    image_uri: str  # a container that implements SageMaker's multi-model API
    prefix: str = "multi-model/"  # under the artifact bucket: every model.tar.gz below is servable


@dataclass(frozen=True)
class Batch:
    schedule: str = "cron(0 2 * * ? *)"  # EventBridge Scheduler, UTC
    input_prefix: str = "batch/input/"  # under the raw bucket
    instance_count: int = 1


@dataclass(frozen=True)
class Endpoint:
    kind: str
    autoscaling: Autoscaling = field(default_factory=Autoscaling)
    capture: Capture = field(default_factory=lambda: Capture(enabled=True))
    deployment: Deployment | None = None
    alarms: Alarms = field(default_factory=Alarms)
    serverless: Serverless | None = None
    async_: AsyncConfig | None = None
    multi_model: MultiModel | None = None
    batch: Batch | None = None
    vpc: bool = True
    network_isolation: bool = True
    invokers: tuple[str, ...] = ()  # IAM role ARNs granted sagemaker:InvokeEndpoint(Async)

    @property
    def min_capacity(self) -> int:
        return self.autoscaling.min_capacity

    @property
    def max_capacity(self) -> int:
        return self.autoscaling.max_capacity


_KEYS = {
    "kind",
    "autoscaling",
    "capture",
    "deployment",
    "alarms",
    "serverless",
    "async",
    "multi_model",
    "batch",
    "vpc",
    "network_isolation",
    "invokers",
}
# The block each kind takes; another kind's block is an error (it would be silently ignored).
_KIND_BLOCK = {"serverless": "serverless", "async": "async", "multi-model": "multi_model", "batch": "batch"}


def parse_endpoint(
    n: _Node,
    *,
    account: str,
    initial_instance_count: int,
    version: int | None,
    version_field: str,
    instance_type: object = None,
    instance_field: str = "instances.endpoint",
) -> Endpoint:
    """The environment's `endpoint` block (`n`), checked against SageMaker's rules.
    `instance_type` (`instances.endpoint`) must also be a transform type for kind `batch`."""
    from config import instance_types
    from config.schema import ConfigError

    kind = n.choice("kind", KINDS)
    if kind == "batch" and instance_type is not None:
        expected = instance_types.problem(instance_type, "transform")
        if expected:
            raise ConfigError(
                f"config error: {instance_field} = {instance_type!r}: expected {expected} "
                f"(kind 'batch' runs transform jobs on it)"
            )
    if version is None:
        raise ConfigError(
            f"config error: {version_field} = None: expected an integer >= 1 because {n.path} is set: "
            "an endpoint serves a pinned model package version, never 'the latest'; set the version "
            f"or remove {n.path}"
        )
    for other_kind, block in _KIND_BLOCK.items():
        if block in n.raw and other_kind != kind:
            raise n.fail(
                block, n.raw[block], f"no value: only kind {other_kind!r} takes it (kind is {kind!r})"
            )
    serverless = kind == "serverless"

    vpc = n.bool_("vpc", not serverless)
    isolation = n.bool_("network_isolation", not serverless)
    if serverless and vpc:
        raise n.fail("vpc", vpc, "false: serverless endpoints take no VPC config")
    if serverless and isolation:
        raise n.fail("network_isolation", isolation, "false: serverless endpoints take no network isolation")

    cap = n.child("capture", {"enabled", "sampling_percentage"}, {})
    capture = Capture(
        enabled=cap.bool_("enabled", kind in INSTANCE_KINDS),
        sampling_percentage=cap.int_("sampling_percentage", 1, 100, 100),
    )
    if serverless and capture.enabled:
        raise cap.fail("enabled", True, "false: serverless endpoints take no data capture")
    if kind == "batch" and capture.enabled:
        raise cap.fail("enabled", True, "false: batch transform has no endpoint to capture")

    autoscaling = _autoscaling(n, kind, initial_instance_count)
    deployment = _deployment(n, kind) if "deployment" in n.raw else None
    al = n.child("alarms", {"p99_latency_ms", "error_rate_percent", "no_invocations_minutes"}, {})
    silent = al.get("no_invocations_minutes", None)
    if silent is not None:
        silent = al.int_("no_invocations_minutes", 5, 1440)
    alarms = Alarms(
        p99_latency_ms=al.int_("p99_latency_ms", 1, 60_000, 500),
        error_rate_percent=_percent(al, "error_rate_percent", 1.0),
        no_invocations_minutes=silent,
    )
    invokers = n.get("invokers", [])
    role = re.compile(rf"^arn:aws[a-z-]*:iam::{account}:role/[\w+=,.@/-]{{1,512}}$")
    if not isinstance(invokers, list) or not all(isinstance(a, str) and role.match(a) for a in invokers):
        raise n.fail(
            "invokers", invokers, f"a list of IAM role ARNs in this environment's account ({account})"
        )
    if kind == "batch" and invokers:
        raise n.fail("invokers", invokers, "an empty list: batch transform has no endpoint to invoke")

    return Endpoint(
        kind=kind,
        autoscaling=autoscaling,
        capture=capture,
        deployment=deployment,
        alarms=alarms,
        serverless=_serverless(n) if serverless else None,
        async_=_async(n) if kind == "async" else None,
        multi_model=_multi_model(n) if kind == "multi-model" else None,
        batch=_batch(n) if kind == "batch" else None,
        vpc=vpc,
        network_isolation=isolation,
        invokers=tuple(invokers),
    )


def _autoscaling(n: _Node, kind: str, initial: int) -> Autoscaling:
    s = n.child(
        "autoscaling",
        {"min", "max", "invocations_per_instance", "scale_in_cooldown_s", "scale_out_cooldown_s"},
        {},
    )
    if kind in ("serverless", "batch"):
        if s.raw:  # serverless scales itself (max_concurrency); batch sizes by instance_count
            raise n.fail("autoscaling", s.raw, f"no value: kind {kind!r} does not autoscale instances")
        return Autoscaling()
    lo = s.int_("min", 0, 100, 1)
    hi = s.int_("max", 1, 100, max(lo, 1, initial))
    if lo == 0 and kind != "async":
        raise s.fail("min", lo, "at least 1: only asynchronous endpoints scale to zero instances")
    if lo > hi:
        raise s.fail("min", lo, f"at most autoscaling.max ({hi})")
    if not max(lo, 1) <= initial <= hi:
        raise s.fail("max", hi, f"a range that holds instance_counts.endpoint ({initial}); min is {lo}")
    return Autoscaling(
        min_capacity=lo,
        max_capacity=hi,
        invocations_per_instance=s.int_("invocations_per_instance", 1, 100_000, 100),
        scale_in_cooldown_s=s.int_("scale_in_cooldown_s", 0, 3600, 300),
        scale_out_cooldown_s=s.int_("scale_out_cooldown_s", 0, 3600, 60),
    )


def _deployment(n: _Node, kind: str) -> Deployment:
    d = n.child(
        "deployment",
        {"strategy", "step_percent", "wait_s", "termination_wait_s", "max_execution_s", "rollback_alarms"},
    )
    strategy = d.choice("strategy", STRATEGIES)
    if kind != "realtime":
        reason = "rolling updates exclude serverless endpoints; " if kind == "serverless" else ""
        raise n.fail("deployment", d.raw, f"no value: {reason}guarded rollouts are for kind 'realtime' here")
    names = d.get("rollback_alarms", [])
    if not isinstance(names, list) or not all(isinstance(a, str) and _ALARM_NAME.match(a) for a in names):
        raise d.fail("rollback_alarms", names, "a list of CloudWatch alarm names")
    return Deployment(
        strategy=strategy,
        step_percent=d.int_("step_percent", 1, 99, 10),
        wait_s=d.int_("wait_s", 0, 3600, 300),
        termination_wait_s=d.int_("termination_wait_s", 0, 3600, 300),
        max_execution_s=d.int_("max_execution_s", 600, 28_800, 3600),
        rollback_alarms=tuple(names),
    )


def _serverless(n: _Node) -> Serverless:
    s = n.child("serverless", {"memory_mb", "max_concurrency", "provisioned_concurrency"}, {})
    memory = s.get("memory_mb", 2048)
    if memory not in SERVERLESS_MEMORY_MB or isinstance(memory, bool):
        raise s.fail("memory_mb", memory, f"one of {list(SERVERLESS_MEMORY_MB)}")
    top = s.int_("max_concurrency", 1, 200, 10)
    provisioned = s.int_("provisioned_concurrency", 0, 200, 0)
    if provisioned > top:
        raise s.fail("provisioned_concurrency", provisioned, f"at most max_concurrency ({top})")
    return Serverless(memory_mb=memory, max_concurrency=top, provisioned_concurrency=provisioned)


def _async(n: _Node) -> AsyncConfig:
    a = n.child("async", {"max_concurrent_invocations_per_instance", "backlog_per_instance"}, {})
    return AsyncConfig(
        max_concurrent_invocations_per_instance=a.int_("max_concurrent_invocations_per_instance", 1, 1000, 4),
        backlog_per_instance=a.int_("backlog_per_instance", 1, 10_000, 5),
    )


def _multi_model(n: _Node) -> MultiModel:
    m = n.child("multi_model", {"image_uri", "prefix"})
    return MultiModel(
        image_uri=m.str_(
            "image_uri",
            _ECR_IMAGE,
            "an ECR image URI with a tag or digest, of a container implementing SageMaker's multi-model "
            "API (the project's serve image does not)",
        ),
        prefix=m.str_("prefix", _PREFIX, "an S3 key prefix ending in '/'", "multi-model/"),
    )


def _batch(n: _Node) -> Batch:
    from config.schema import _schedule

    b = n.child("batch", {"schedule", "input_prefix", "instance_count"}, {})
    return Batch(
        schedule=_schedule(b, "schedule") if "schedule" in b.raw else Batch.schedule,
        input_prefix=b.str_("input_prefix", _PREFIX, "an S3 key prefix ending in '/'", "batch/input/"),
        instance_count=b.int_("instance_count", 1, 100, 1),
    )


def _percent(n: _Node, key: str, default: float) -> float:
    value = n.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
        raise n.fail(key, value, "a number in (0, 100]")
    return float(value)


def endpoint_or_none(n: _Node, key: str, **kwargs: Any) -> Endpoint | None:
    """`parse_endpoint` on `n[key]`, or None when the key is absent or null (nothing served)."""
    from config.schema import _Node

    if n.raw.get(key) is None:
        return None
    return parse_endpoint(_Node(n.raw[key], n.where(key), _KEYS), **kwargs)
