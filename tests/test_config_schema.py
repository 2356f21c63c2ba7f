"""config/environments.yaml is validated at app start; each bad value names env, field, value, allowed."""

import copy

import pytest

from config import ConfigError, load_config
from config.schema import parse_config


def test_default_config_loads():
    config = load_config()
    assert config.environment_names == ["dev", "prod"]
    dev, prod = config.environments
    assert (dev.approval, dev.model_approval_status) == ("auto", "Approved")
    assert (prod.approval, prod.model_approval_status) == ("manual", "PendingManualApproval")
    assert config.bucket_name(dev, "raw") == "mlops-dev-raw-111111111111-eu-west-1"
    assert prod.instances.training.startswith("ml.") and prod.instance_counts.processing >= 1
    assert 0 < prod.thresholds.auc_floor < 1
    assert isinstance(dev.training.spot, bool) and isinstance(prod.training.tuning.enabled, bool)
    assert prod.training.tuning.max_parallel <= prod.training.tuning.max_jobs
    assert config.tooling.account == "000000000000"
    # The preparation engine: embedded unless an environment asks for Spark (prod, 2 instances).
    assert (dev.preprocess.engine, prod.preprocess.engine) == ("embedded", "spark")


def test_protection_defaults_are_the_safe_ones(cdk_helpers):
    """Fields left out mean: retain, termination protection on, no self-mutation."""
    raw = cdk_helpers.raw_default_config()
    del raw["environments"]["dev"]["protection"], raw["tooling"]["self_mutation"]
    config = parse_config(raw)
    dev = config.environment("dev")
    assert dev.protection.retain and dev.protection.termination_protection
    assert not config.tooling.self_mutation and config.tooling.termination_protection
    shipped = load_config()
    assert not shipped.environment("dev").protection.retain
    assert shipped.environment("prod").protection.retain and shipped.environment("prod").replication


def test_a_third_environment_is_one_entry(cdk_helpers):
    config = parse_config(cdk_helpers.config_with_staging())
    assert config.environment_names == ["dev", "staging", "prod"]
    staging = config.environment("staging")
    assert staging.vpc.mode == "import" and staging.replication and staging.model_package_version == 3


def _set(raw, path, value):
    *parents, last = path.split(".")
    node = raw
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()

# (field path, bad value, text that must appear in the "expected ..." part)
BAD_VALUES = [
    ("environments.prod.instances.training", "ml.m5.huge", "training instance types in botocore's"),
    ("environments.prod.instances.endpoint", "ml.m5.hug", "closest: ['ml.m5.large'"),
    ("environments.dev.region", "eu-west-9", "one of ["),
    ("environments.dev.account", "12345", "12-digit"),
    ("environments.dev.account", 111111111111, "12-digit"),
    ("environments.dev.vpc.mode", "peered", "one of ['create', 'import']"),
    ("environments.dev.vpc.cidr", "8.8.0.0/16", "private IPv4 CIDR"),
    ("environments.dev.vpc.max_azs", 0, "an integer in [1, 6]"),
    (
        "environments.dev.endpoint.kind",
        "streaming",
        "one of ['realtime', 'serverless', 'async', 'multi-model', 'batch']",
    ),
    ("environments.prod.endpoint.autoscaling.min", 7, "at most autoscaling.max"),
    ("environments.dev.schedules.retraining", "every monday", "EventBridge expression"),
    ("environments.dev.schedules.monitoring", "rate(0 hours)", "EventBridge expression"),
    ("environments.dev.thresholds.auc_floor", 1.2, "a number in (0, 1)"),
    ("environments.dev.thresholds.drift_psi", 0, "a number > 0"),
    ("environments.prod.approval", "maybe", "one of ['auto', 'manual']"),
    ("environments.prod.model_package_version", 0, "null or an integer >= 1"),
    ("environments.prod.retention.capture_days", -1, "an integer in [1, 3650]"),
    ("environments.prod.replication", "yes", "true or false"),
    ("environments.prod.instance_counts.training", 0, "an integer in [1, 100]"),
    ("environments.prod.training.spot", "on", "true or false"),
    ("environments.prod.training.tuning.max_parallel", 50, "at most max_jobs"),
    ("environments.prod.tags", {"env": 3}, "a mapping of tag key"),
    ("tooling.connection_arn", "arn:aws:s3:::bucket", "connection ARN"),
    ("tooling.repository", "no-slash", "'owner/name'"),
    ("project", "My Project", "lower-case"),
    ("environments.prod.protection.removal_policy", "snapshot", "one of ['retain', 'destroy']"),
    ("environments.prod.protection.termination_protection", "yes", "true or false"),
    ("environments.prod.retention.log_days", 100, "one of [1, 3, 5"),
    ("environments.prod.retention.noncurrent_version_days", 0, "an integer in [1, 3650]"),
    ("environments.prod.key_admins", ["arn:aws:iam::111111111111:role/admin"], "account 222222222222"),
    ("environments.prod.key_admins", "arn:aws:iam::222222222222:role/admin", "a list of IAM role"),
    ("environments.dev.vpc.s3_prefix_list_id", "pl-xyz", "S3 prefix list id"),
    ("tooling.self_mutation", "sometimes", "true or false"),
    ("environments.prod.preprocess.engine", "sparky", "one of ['embedded', 'spark']"),
]


@pytest.mark.parametrize("path,value,allowed", BAD_VALUES, ids=[f"{p}={v!r}" for p, v, _ in BAD_VALUES])
def test_bad_value_names_field_value_and_allowed(path, value, allowed, cdk_helpers):
    raw = cdk_helpers.raw_default_config()
    _set(raw, path, value)
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    message = str(err.value)
    assert message.startswith("config error: ")
    assert path in message, message  # names the environment and the field
    assert repr(value) in message, message
    assert allowed in message, message


def test_the_example_message(cdk_helpers):
    raw = cdk_helpers.raw_default_config()
    raw["environments"]["prod"]["instances"]["training"] = "ml.m5.huge"
    with pytest.raises(
        ConfigError,
        match=r"^config error: environments\.prod\.instances\.training = 'ml\.m5\.huge': "
        r"expected one of the 225 training instance types",
    ):
        parse_config(raw)


@pytest.mark.parametrize(
    "path,key",
    [
        ("environments.dev", "instance_type"),
        ("environments.dev.thresholds", "auc"),
        ("", "extra"),
        ("environments.prod.vpc", "vpc_id"),
    ],
)
def test_unknown_or_misplaced_keys_are_errors(path, key, cdk_helpers):
    raw = cdk_helpers.raw_default_config()
    node = raw
    for p in filter(None, path.split(".")):
        node = node[p]
    node[key] = "vpc-0123456789abcdef0"
    with pytest.raises(ConfigError, match=rf"{path + '.' if path else ''}{key}"):
        parse_config(raw)


def test_the_s3_prefix_list_is_required(cdk_helpers):
    raw = cdk_helpers.raw_default_config()
    del raw["environments"]["dev"]["vpc"]["s3_prefix_list_id"]
    with pytest.raises(ConfigError, match=r"environments\.dev\.vpc\.s3_prefix_list_id: is required"):
        parse_config(raw)


def test_missing_required_field(cdk_helpers):
    raw = cdk_helpers.raw_default_config()
    _set(raw, "environments.dev.thresholds.auc_floor", _DELETE)
    with pytest.raises(ConfigError, match=r"environments\.dev\.thresholds\.auc_floor: is required"):
        parse_config(raw)


def test_import_vpc_needs_matching_subnets_and_zones(cdk_helpers):
    raw = cdk_helpers.config_with_staging()
    raw["environments"]["staging"]["vpc"]["availability_zones"] = ["eu-central-1a"]
    with pytest.raises(
        ConfigError,
        match=r"environments\.staging\.vpc\.availability_zones = \['eu-central-1a'\]: expected a list of 2",
    ):
        parse_config(raw)
    raw = cdk_helpers.config_with_staging()
    raw["environments"]["staging"]["vpc"]["vpc_id"] = "vpc-xyz"
    with pytest.raises(ConfigError, match=r"environments\.staging\.vpc\.vpc_id = 'vpc-xyz'"):
        parse_config(raw)


def test_prod_must_be_last_and_names_fit_buckets(cdk_helpers):
    raw = cdk_helpers.raw_default_config()
    envs = raw["environments"]
    raw["environments"] = {"prod": envs["prod"], "dev": envs["dev"]}
    with pytest.raises(ConfigError, match="prod last"):
        parse_config(raw)
    raw = copy.deepcopy(cdk_helpers.raw_default_config())
    raw["environments"] = {"a-very-long-env-name": raw["environments"]["dev"]}
    raw["project"] = "a-long-project-name"
    with pytest.raises(ConfigError, match="exceeds 63 characters"):
        parse_config(raw)


def test_the_preparation_engine_defaults_to_embedded(cdk_helpers):
    raw = cdk_helpers.raw_default_config()
    del raw["environments"]["prod"]["preprocess"]
    assert parse_config(raw).environment("prod").preprocess.engine == "embedded"
