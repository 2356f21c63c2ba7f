"""CDK test fixtures (for the test_cdk_* and test_config_* files): shared synths, config helpers.

Test files are named by the part they test: test_cdk_* (stacks, constructs, the app),
test_config_*, test_containers_*, test_steps_<step>_*, test_workflow_<part>_*, test_bench_*.

A jsii-backed synth takes seconds, so each distinct app configuration is synthesized once per
test process (functools.cache) and the session fixtures below hand out the result:

- `pipeline_synth`: the default config (dev, prod), the delivery pipeline with both stages,
  cdk-nag on: what `make synth` builds.
- `environments_synth`: a config with a third environment (staging: imported VPC, replication
  on), `-c target=environments` (no pipeline), cdk-nag on.
  Staging serves an asynchronous endpoint (scale to zero, capture sampling, an invoker).
- `serving_synth`: one config whose environments cover the endpoint kinds and options the two
  others do not (serverless with provisioned concurrency, multi-model, scheduled batch
  transform, real-time with a rolling update, invokers and a no-traffic alarm),
  `-c target=environments`, cdk-nag on.
- `bootstrap_synth`: the default config, `-c target=bootstrap` (the CloudFormation execution
  policy of each account), cdk-nag on; small and fast.
- `delivery_with_staging_and_self_mutation`: only the DeliveryStack of the staging config with
  self-mutation on, not synthesized as an app (no nag).

Two kinds of work run beside the tests, in their own processes: cfn-lint over the synths'
templates (tests/cfn_lint_job.py), and the background lane (tests/background_jobs.py), which
runs the long self-contained runs (pipelines, the demo, Spark, two-host training) one after
another from the start of the session; the fixtures in BACKGROUND_JOBS hand their results to
the tests that read them, which run last.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from background_jobs import BackgroundLane
from cfn_lint_job import CfnLintJob, lint_inputs

from config import DEFAULT_PATH, ProjectConfig, load_config

if TYPE_CHECKING:  # the CDK (jsii, a Node process) is imported only by tests that synthesize
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template

REPO_ROOT = Path(__file__).resolve().parent.parent

# The pipelines the tests run (and their step processes, which inherit the environment) time
# 10 single-row predictions per scorer in Evaluate instead of 50: they check that latency is
# reported, not its value, and the 40 more cost ~2 s of every Evaluate step.
os.environ.setdefault("EVALUATE_LATENCY_SAMPLES", "10")
# One OpenMP (and OpenBLAS) thread per process: the suite already keeps the cores busy with
# pytest, the CDK's Node process and each step's process, and every XGBoost thread beyond one
# spins at each round's barrier while it waits for a core (the tuning and demo runs took 25%
# more CPU with them).  Tests of threading pass `nthread` or set the variable themselves; the step
# code (nthread 0 = every core) runs unchanged, and no claim of a test depends on the core count.
os.environ.setdefault("OMP_NUM_THREADS", "1")

STAGING = {
    "account": "333333333333",
    "region": "eu-central-1",
    "vpc": {
        "mode": "import",
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        "availability_zones": ["eu-central-1a", "eu-central-1b"],
        "s3_prefix_list_id": "pl-6ea54007",
        "endpoint_security_group_id": "sg-0123456789abcdef0",
    },
    "instances": {
        "processing": "ml.m5.xlarge",
        "training": "ml.m5.xlarge",
        "evaluation": "ml.m5.large",
        "endpoint": "ml.m5.large",
    },
    "instance_counts": {"processing": 1, "training": 1, "endpoint": 1},
    "training": {"spot": True, "tuning": {"enabled": True, "max_jobs": 6, "max_parallel": 2}},
    "endpoint": {
        "kind": "async",
        "autoscaling": {"min": 0, "max": 2},
        "async": {"max_concurrent_invocations_per_instance": 2, "backlog_per_instance": 10},
        "capture": {"enabled": True, "sampling_percentage": 20},
        "invokers": ["arn:aws:iam::333333333333:role/underwriting-service"],
    },
    "schedules": {"retraining": "cron(0 4 ? * SUN *)", "monitoring": "rate(6 hours)"},
    "thresholds": {"auc_floor": 0.72, "drift_psi": 0.25, "drift_psi_features": {"tenure_months": 0.3}},
    "approval": "manual",
    "model_package_version": 3,
    "retention": {"capture_days": 60, "monitoring_days": 180},
    "replication": True,
    "tags": {"environment": "staging"},
    # Model Monitor schedules on (an account that still has Model Monitor), per-feature drift
    "monitoring": {
        "model_monitor": True,
        "retraining_cooldown_hours": 12,
        "label_lookback_hours": 48,
        "labeling_workteam": True,
    },
}


def _serving_environment(index: int, endpoint: dict, version: int | None = 2) -> dict:
    """An environment of the serving config: dev's settings, its own account, CIDR and endpoint."""
    env = copy.deepcopy(raw_default_config()["environments"]["dev"])
    account = f"44444444444{index}"
    vpc = {**env["vpc"], "cidr": f"10.{50 + index}.0.0/16", "max_azs": 2}  # dev's S3 prefix list too
    env.update(account=account, vpc=vpc)
    env["endpoint"] = endpoint
    env["model_package_version"] = version
    env["instance_counts"] = {**env["instance_counts"], "endpoint": 2}
    return env


def config_with_serving_kinds() -> dict:
    """Four environments, one per endpoint kind/option the other synths do not cover."""
    raw = raw_default_config()
    raw["environments"] = {
        "svl": _serving_environment(
            0,
            {
                "kind": "serverless",
                "serverless": {"memory_mb": 3072, "max_concurrency": 20, "provisioned_concurrency": 4},
            },
        ),
        "mme": _serving_environment(
            2,
            {
                "kind": "multi-model",
                "autoscaling": {"min": 1, "max": 3},
                "multi_model": {
                    "image_uri": "444444444442.dkr.ecr.eu-west-1.amazonaws.com/multi-model-server:1.0",
                    "prefix": "merchant-models/",
                },
            },
        ),
        "bat": _serving_environment(
            3,
            {
                "kind": "batch",
                "batch": {"schedule": "cron(30 1 * * ? *)", "input_prefix": "scoring/", "instance_count": 2},
            },
        ),
        "prod": _serving_environment(
            4,
            {
                "kind": "realtime",
                "autoscaling": {"min": 2, "max": 8},
                "deployment": {
                    "strategy": "rolling",
                    "step_percent": 25,
                    "rollback_alarms": ["mlops-prod-drift"],
                },
                "alarms": {"p99_latency_ms": 250, "error_rate_percent": 0.5, "no_invocations_minutes": 30},
                "invokers": ["arn:aws:iam::444444444444:role/underwriting-service"],
            },
            version=7,
        ),
    }
    return raw


def raw_default_config() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text())


def config_with_staging() -> dict:
    """The default config with staging inserted between dev and prod."""
    raw = raw_default_config()
    envs = raw["environments"]
    raw["environments"] = {"dev": envs["dev"], "staging": copy.deepcopy(STAGING), "prod": envs["prod"]}
    return raw


def write_config(raw: dict) -> Path:
    path = Path(tempfile.mkdtemp(prefix="cdk-config-")) / "environments.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def cdk_context() -> dict:
    """The feature flags of cdk.json, so in-process synths match `cdk synth`."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synth:
    config: ProjectConfig
    app: App
    outdir: Path
    error: Exception | None

    def template(self, stack: Stack) -> Template:
        """The synthesized template of any stack, in its own (possibly nested) assembly."""
        from aws_cdk.assertions import Template

        return Template.from_json(json.loads(self.json(stack)))

    def json(self, stack: Stack) -> str:
        from aws_cdk import Stage

        return (Path(Stage.of(stack).outdir) / stack.template_file).read_text()

    @property
    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json")) + sorted(
            self.outdir.glob("assembly-*/*.template.json")
        )

    @property
    def validation_report(self) -> dict:
        return json.loads((self.outdir / "validation-report.json").read_text())


def synthesize(config: ProjectConfig, target: str) -> Synth:
    from aws_cdk import App

    import stacks  # noqa: F401 - imported for its effect: the project's constructs/ resolve
    from app import build_app

    outdir = Path(tempfile.mkdtemp(prefix=f"cdk-{target}-"))
    app = App(outdir=str(outdir), context=cdk_context())
    build_app(config, target=target, app=app)
    try:
        app.synth()
        error = None
    except RuntimeError as err:  # cdk-nag findings fail the synth; tests report them
        error = err
    return Synth(config, app, outdir, error)


@functools.cache
def _pipeline_synth() -> Synth:
    return synthesize(load_config(), "pipeline")


@functools.cache
def _environments_synth() -> Synth:
    return synthesize(load_config(write_config(config_with_staging())), "environments")


@functools.cache
def _serving_synth() -> Synth:
    return synthesize(load_config(write_config(config_with_serving_kinds())), "environments")


@pytest.fixture(scope="session")
def serving_synth() -> Synth:
    return _serving_synth()


@functools.cache
def _bootstrap_synth() -> Synth:
    return synthesize(load_config(), "bootstrap")


@pytest.fixture(scope="session")
def bootstrap_synth() -> Synth:
    return _bootstrap_synth()


_SYNTHS = {
    "pipeline_synth",
    "environments_synth",
    "serving_synth",
    "bootstrap_synth",
    "delivery_with_staging_and_self_mutation",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With pytest-xdist (`-n 2 --dist loadgroup`): every test that uses a shared synth goes
    to one worker, which synthesizes each app once; every other module stays whole on one
    worker, so its module-scoped fixtures (an end-to-end run) run once.

    The tests that read a background job's result (tests/background_jobs.py: the long pipeline,
    demo and Spark runs; cfn-lint) run last, so the jobs overlap every other test; the
    background lane starts now with the jobs the selected tests need, in the order they read them."""
    for item in items:
        uses_synth = bool(_SYNTHS & set(getattr(item, "fixturenames", ())))
        item.add_marker(pytest.mark.xdist_group("cdk-synth" if uses_synth else item.nodeid.split("::")[0]))

    def jobs_of(item: pytest.Item) -> list[str]:
        names = set(getattr(item, "fixturenames", ()))
        return [job for fixture, job in BACKGROUND_JOBS.items() if fixture in names]

    waiting = [item for item in items if jobs_of(item)]
    lint = [item for item in items if "cfn_lint" in getattr(item, "fixturenames", ())]
    items[:] = [item for item in items if item not in waiting and item not in lint] + waiting + lint
    _cfn_lint.wanted = bool(lint)
    jobs = list(dict.fromkeys(job for item in waiting for job in jobs_of(item)))
    if jobs and not os.environ.get("PYTEST_XDIST_WORKER"):  # under xdist: started where they run
        _background.start(jobs)


# ---- cfn-lint in the background (tests/cfn_lint_job.py) ------------------------------------------
class _CfnLint:
    wanted = False
    job: CfnLintJob | None = None

    @staticmethod
    def synthesized() -> bool:
        return all(f.cache_info().currsize for f in (_pipeline_synth, _environments_synth, _serving_synth))

    def start(self) -> CfnLintJob:
        if self.job is None:
            files, regions = lint_inputs(
                _pipeline_synth(), _environments_synth(), _serving_synth(), _bootstrap_synth()
            )
            self.job = CfnLintJob(files, regions)
        return self.job


_cfn_lint = _CfnLint()


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Once the three large synths exist (the bootstrap one takes seconds), start the linter."""
    if _cfn_lint.wanted and _cfn_lint.job is None and _cfn_lint.synthesized():
        _cfn_lint.wanted = False  # one try here; a failure is reported by the cfn-lint test itself
        with contextlib.suppress(Exception):
            _cfn_lint.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _cfn_lint.job is not None:
        _cfn_lint.job.stop()
    for lane in _background.lanes:
        lane.stop()


# ---- a served model (tests/serve_helpers.py) ------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small XGBoost model trained on rows built from the spec, as SM_MODEL_DIR holds it (one
    per test module that serves it)."""
    from serve_helpers import build_model_dir

    return build_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def booster(model_dir: Path) -> object:
    """The model's booster, whose own predictions the server's must equal."""
    from serve_helpers import load_booster

    return load_booster(model_dir)


# ---- long runs in the background (tests/background_jobs.py) -------------------------------------
# tests/lane/: run by the background job `lane-tests` in a pytest process of its own, not here
# (collected only where BACKGROUND_LANE_TESTS is set: in that process, or to run them alone).
collect_ignore = [] if os.environ.get("BACKGROUND_LANE_TESTS") else ["lane"]

# fixture -> job: a test that uses the fixture gets the job's result (and runs last)
BACKGROUND_JOBS = {
    "spark_vs_embedded": "spark-vs-embedded",
    "credit_data_demo": "credit-data-demo",
    "credit_pipeline": "credit-pipeline",
    "islr_pipeline": "islr-pipeline",
    "tuning_pipeline": "tuning-pipeline",
    "two_host_training": "two-host-training",
    "lane_tests": "lane-tests",
}


class _Background:
    lanes: list[BackgroundLane] = []

    def start(self, jobs: list[str]) -> BackgroundLane:
        lane = BackgroundLane(jobs)
        self.lanes.append(lane)
        return lane

    def result(self, job: str) -> object:
        lane = next((lane for lane in self.lanes if job in lane.jobs), None) or self.start([job])
        return lane.result(job)


_background = _Background()


def _background_fixture(fixture: str, job: str) -> Callable[[], object]:
    def result() -> object:
        return _background.result(job)

    result.__doc__ = f"The result of background job {job!r} (tests/background_jobs.py), waited for."
    return pytest.fixture(scope="session", name=fixture)(result)


for _fixture, _job in BACKGROUND_JOBS.items():
    globals()[f"_{_fixture}_fixture"] = _background_fixture(_fixture, _job)


@pytest.fixture(scope="session")
def cfn_lint() -> Callable[[], CfnLintJob]:
    """The background cfn-lint job over the shared synths' templates (started now if not yet)."""
    return _cfn_lint.start


@pytest.fixture(scope="session")
def pipeline_synth() -> Synth:
    return _pipeline_synth()


@pytest.fixture(scope="session")
def environments_synth() -> Synth:
    return _environments_synth()


@functools.cache
def _delivery_with_staging_and_self_mutation() -> Stack:
    from aws_cdk import App, Environment

    import stacks  # noqa: F401 - imported for its effect: the project's constructs/ resolve
    from stacks.delivery_stack import DeliveryStack

    raw = config_with_staging()
    raw["tooling"]["self_mutation"] = True
    config = load_config(write_config(raw))
    tooling = config.tooling
    env = Environment(account=tooling.account, region=tooling.region)
    return DeliveryStack(App(context=cdk_context()), "Delivery", config=config, env=env)


@pytest.fixture(scope="session")
def delivery_with_staging_and_self_mutation() -> Stack:
    """A DeliveryStack alone (no synth, no nag) for the options the default pipeline lacks: a
    third environment (staging, between dev and prod) and self-mutation; built once, as both
    options' tests read it (the pipeline's stages; the CLI it installs)."""
    return _delivery_with_staging_and_self_mutation()


@pytest.fixture(scope="session")
def delivery(pipeline_synth):
    return pipeline_synth.app.node.find_child("Delivery")


@pytest.fixture(scope="session")
def dev_stage(delivery):
    return delivery.stages["dev"]


# ---- helpers as fixtures (test modules cannot import this file: `tests` is not a package) -------
@pytest.fixture(scope="session")
def cdk_helpers():
    """Config helpers for tests that build their own config or app."""

    class Helpers:
        raw_default_config = staticmethod(raw_default_config)
        config_with_staging = staticmethod(config_with_staging)
        config_with_serving_kinds = staticmethod(config_with_serving_kinds)
        write_config = staticmethod(write_config)
        cdk_context = staticmethod(cdk_context)
        repo_root = REPO_ROOT

    return Helpers
