"""The `endpoint` block (config/serving.py): SageMaker's rules fail at app start, naming the field."""

import copy

import pytest

from config import ConfigError
from config.schema import parse_config


def _with(raw: dict, env: str, endpoint: dict | None, **fields) -> dict:
    raw = copy.deepcopy(raw)
    raw["environments"][env]["endpoint"] = endpoint
    raw["environments"][env].update(fields)
    return raw


SERVERLESS = {"kind": "serverless"}
REALTIME = {"kind": "realtime", "autoscaling": {"min": 2, "max": 6}}

# (environment, endpoint block, field named in the message, text of what is expected)
BAD_ENDPOINTS = [
    (
        "dev",
        {**SERVERLESS, "capture": {"enabled": True}},
        "environments.dev.endpoint.capture.enabled",
        "serverless endpoints take no data capture",
    ),
    (
        "dev",
        {**SERVERLESS, "vpc": True},
        "environments.dev.endpoint.vpc",
        "serverless endpoints take no VPC config",
    ),
    (
        "dev",
        {**SERVERLESS, "network_isolation": True},
        "environments.dev.endpoint.network_isolation",
        "no network isolation",
    ),
    (
        "dev",
        {**SERVERLESS, "deployment": {"strategy": "rolling"}},
        "environments.dev.endpoint.deployment",
        "rolling updates exclude serverless",
    ),
    (
        "dev",
        {**SERVERLESS, "autoscaling": {"min": 1, "max": 2}},
        "environments.dev.endpoint.autoscaling",
        "does not autoscale",
    ),
    (
        "dev",
        {**SERVERLESS, "serverless": {"memory_mb": 1000}},
        "environments.dev.endpoint.serverless.memory_mb",
        "one of [1024",
    ),
    (
        "dev",
        {**SERVERLESS, "serverless": {"max_concurrency": 5, "provisioned_concurrency": 6}},
        "environments.dev.endpoint.serverless.provisioned_concurrency",
        "at most max_concurrency (5)",
    ),
    ("dev", {**SERVERLESS, "async": {}}, "environments.dev.endpoint.async", "only kind 'async' takes it"),
    (
        "prod",
        {**REALTIME, "autoscaling": {"min": 0, "max": 6}},
        "environments.prod.endpoint.autoscaling.min",
        "only asynchronous endpoints scale to zero",
    ),
    (
        "prod",
        {**REALTIME, "autoscaling": {"min": 3, "max": 6}},
        "environments.prod.endpoint.autoscaling.max",
        "holds instance_counts.endpoint (2)",
    ),
    (
        "prod",
        {**REALTIME, "deployment": {"strategy": "blue"}},
        "environments.prod.endpoint.deployment.strategy",
        "one of ['all-at-once', 'canary', 'linear', 'rolling']",
    ),
    (
        "prod",
        {**REALTIME, "deployment": {"strategy": "canary", "step_percent": 100}},
        "environments.prod.endpoint.deployment.step_percent",
        "an integer in [1, 99]",
    ),
    (
        "prod",
        {**REALTIME, "deployment": {"strategy": "canary", "rollback_alarms": "x"}},
        "environments.prod.endpoint.deployment.rollback_alarms",
        "a list of CloudWatch alarm names",
    ),
    (
        "prod",
        {**REALTIME, "capture": {"sampling_percentage": 0}},
        "environments.prod.endpoint.capture.sampling_percentage",
        "an integer in [1, 100]",
    ),
    (
        "prod",
        {**REALTIME, "alarms": {"error_rate_percent": 0}},
        "environments.prod.endpoint.alarms.error_rate_percent",
        "a number in (0, 100]",
    ),
    (
        "prod",
        {**REALTIME, "alarms": {"no_invocations_minutes": 1}},
        "environments.prod.endpoint.alarms.no_invocations_minutes",
        "an integer in [5, 1440]",
    ),
    (
        "prod",
        {**REALTIME, "invokers": ["arn:aws:iam::999999999999:role/other"]},
        "environments.prod.endpoint.invokers",
        "IAM role ARNs in this environment's account (222222222222)",
    ),
    ("prod", {"kind": "multi-model"}, "environments.prod.endpoint.multi_model", "is required"),
    (
        "prod",
        {"kind": "multi-model", "multi_model": {"image_uri": "nginx:latest"}},
        "environments.prod.endpoint.multi_model.image_uri",
        "multi-model API",
    ),
    (
        "prod",
        {"kind": "batch", "batch": {"schedule": "nightly"}},
        "environments.prod.endpoint.batch.schedule",
        "EventBridge expression",
    ),
    (
        "prod",
        {"kind": "batch", "batch": {"input_prefix": "no-slash"}},
        "environments.prod.endpoint.batch.input_prefix",
        "ending in '/'",
    ),
    (
        "prod",
        {"kind": "batch", "capture": {"enabled": True}},
        "environments.prod.endpoint.capture.enabled",
        "no endpoint to capture",
    ),
    ("prod", {**REALTIME, "shadow": True}, "environments.prod.endpoint.shadow", "unknown key"),
]


@pytest.mark.parametrize(
    "env,endpoint,field,expected", BAD_ENDPOINTS, ids=[f"{e}:{f}" for e, _, f, _ in BAD_ENDPOINTS]
)
def test_bad_endpoint_names_the_field(cdk_helpers, env, endpoint, field, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(_with(cdk_helpers.raw_default_config(), env, endpoint))
    message = str(err.value)
    assert message.startswith("config error: ") and field in message and expected in message, message


def test_batch_needs_a_transform_instance_type(cdk_helpers):
    raw = _with(cdk_helpers.raw_default_config(), "prod", {"kind": "batch"})
    raw["environments"]["prod"]["instances"]["endpoint"] = "ml.t2.medium"  # hosting only
    with pytest.raises(
        ConfigError, match=r"environments\.prod\.instances\.endpoint = 'ml\.t2\.medium'"
    ) as err:
        parse_config(raw)
    assert "transform instance types" in str(err.value) and "kind 'batch'" in str(err.value)


def test_an_endpoint_needs_a_pinned_version_never_latest(cdk_helpers):
    raw = _with(cdk_helpers.raw_default_config(), "prod", REALTIME, model_package_version=None)
    with pytest.raises(
        ConfigError, match=r"environments\.prod\.model_package_version = None: expected an integer >= 1"
    ) as err:
        parse_config(raw)
    assert "never 'the latest'" in str(err.value) and "environments.prod.endpoint" in str(err.value)


@pytest.mark.parametrize("endpoint", [None, "absent"])
def test_no_endpoint_means_nothing_served_and_no_version_needed(cdk_helpers, endpoint):
    raw = _with(cdk_helpers.raw_default_config(), "dev", None, model_package_version=None)
    if endpoint == "absent":
        del raw["environments"]["dev"]["endpoint"]
    dev = parse_config(raw).environment("dev")
    assert dev.endpoint is None and dev.model_package_version is None


def test_defaults_follow_the_kind(cdk_helpers):
    config = parse_config(cdk_helpers.config_with_staging())
    dev, staging, prod = (config.environment(n).endpoint for n in ("dev", "staging", "prod"))
    # Serverless: no VPC, no isolation, no capture unless asked (and it cannot be asked).
    assert (dev.kind, dev.vpc, dev.network_isolation, dev.capture.enabled) == (
        "serverless",
        False,
        False,
        False,
    )
    # Instance kinds: in the VPC, isolated, capturing everything by default.
    assert (prod.kind, prod.vpc, prod.network_isolation, prod.capture.enabled) == (
        "realtime",
        True,
        True,
        True,
    )
    assert prod.deployment.strategy == "canary" and prod.min_capacity == 2 and prod.max_capacity == 6
    assert (staging.kind, staging.min_capacity, staging.async_.backlog_per_instance) == ("async", 0, 10)
    assert staging.capture.sampling_percentage == 20


def test_the_serving_test_config_parses(cdk_helpers):
    config = parse_config(cdk_helpers.config_with_serving_kinds())
    kinds = {env.name: env.endpoint.kind for env in config.environments}
    assert kinds == {"svl": "serverless", "mme": "multi-model", "bat": "batch", "prod": "realtime"}
