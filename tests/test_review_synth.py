"""`make review` on two real synthesized versions of the app: the session's default synth
(`pipeline_synth`) and one variant that replaces a bucket, widens an IAM role, opens a
security-group rule, acknowledges one cdk-nag finding, moves prod's processing to a bigger
instance type and pins prod's served model version.  Each finding is checked."""

from __future__ import annotations

import contextlib
import copy
import functools
import tempfile
from pathlib import Path

import pytest
from aws_cdk import App
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam

import stacks  # noqa: F401  (first: the project's constructs/)
from config import load_config
from review.__main__ import main as review_main
from review.assembly import read_assembly
from review.compare import Review, compare
from review.cost import load_prices
from review.report import MARKER, render_report
from review.settings import AllowedChange, ReviewConfig
from review.stateful import destructive

RAW_BUCKET_NAME = "mlops-dev-raw-v2-111111111111-eu-west-1"


def variant_config(raw: dict) -> dict:
    raw = copy.deepcopy(raw)
    prod = raw["environments"]["prod"]
    prod["instances"]["processing"] = "ml.m5.4xlarge"
    prod["instances"]["endpoint"] = "ml.m5.2xlarge"
    prod["model_package_version"] = 3
    return raw


@functools.cache
def _variant(helpers_root: str, context_json: str) -> tuple[Path, dict]:
    import json

    from app import build_app
    from constructs.acknowledge import acknowledge

    raw = variant_config(_raw_default(helpers_root))
    import yaml

    path = Path(tempfile.mkdtemp(prefix="review-config-")) / "environments.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    outdir = Path(tempfile.mkdtemp(prefix="review-variant-"))
    app = App(outdir=str(outdir), context=json.loads(context_json))
    build_app(load_config(path), target="pipeline", app=app)
    dev = app.node.find_child("Delivery").stages["dev"]
    # A bucket property that forces replacement.
    dev.data.raw.node.default_child.add_property_override("BucketName", RAW_BUCKET_NAME)
    # An IAM grant with wildcards; one of its nag findings acknowledged, the rest left open.
    role = dev.model_build.execution_role.role
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    acknowledge(
        role,
        "Test variant: a full-access grant acknowledged on purpose.",
        "NIST.800.53.R5-IAMPolicyNoStatementsWithFullAccess",
    )
    # A security-group rule open to the internet.
    dev.network.network.security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "test")
    # The delivery pipeline synthesized the stage when it was built: synthesize it again.
    dev.synth(force=True)
    with contextlib.suppress(RuntimeError):  # open nag findings fail the gate; the assembly is written
        app.synth()
    return outdir, raw


def _raw_default(root: str) -> dict:
    import yaml

    return yaml.safe_load((Path(root) / "config" / "environments.yaml").read_text())


@pytest.fixture(scope="module")
def variant(cdk_helpers) -> tuple[Path, dict]:
    import json

    return _variant(str(cdk_helpers.repo_root), json.dumps(cdk_helpers.cdk_context(), sort_keys=True))


@pytest.fixture(scope="module")
def review(pipeline_synth, variant, cdk_helpers) -> Review:
    outdir, raw = variant
    return compare(
        read_assembly(pipeline_synth.outdir),
        read_assembly(outdir),
        base_config=cdk_helpers.raw_default_config(),
        head_config=raw,
        config=ReviewConfig(),
        prices=load_prices(),
    )


def env(review: Review, name: str):
    return next(e for e in review.environments if e.name == name)


def stack(review: Review, path: str):
    return next(s for e in review.environments for s in e.stacks if s.path == path)


def test_environments_and_stacks_found(review):
    assert [e.name for e in review.environments] == ["tooling", "dev", "prod"] or {
        e.name for e in review.environments
    } == {"tooling", "dev", "prod"}
    assert {s.path for s in env(review, "dev").stacks} >= {
        "Delivery/Dev/Data",
        "Delivery/Dev/Network",
        "Delivery/Dev/FeatureStore",
        "Delivery/Dev/ModelBuild",
    }
    assert stack(review, "Delivery/Prod/Data").status == "unchanged"


def test_bucket_replacement_is_flagged_and_blocks(review):
    data = stack(review, "Delivery/Dev/Data")
    raw = next(
        c for c in data.resources if c.logical_id.startswith("RawBucket") and c.type == "AWS::S3::Bucket"
    )
    assert raw.kind == "replaced" and raw.replacing_properties == ["BucketName"]
    hazards = env(review, "dev").destructive
    assert [h.change.logical_id for h in hazards] == [raw.logical_id]
    assert [h.change.logical_id for h in review.blocking] == [raw.logical_id]
    # An allow-list entry for exactly that resource lets it through; another environment's does not.
    ok = AllowedChange(
        reason="dev raw data is regenerated by make demo", environment="dev", logical_id="RawBucket*"
    )
    other = AllowedChange(
        reason="prod raw data is regenerated nightly", environment="prod", type="AWS::S3::Bucket"
    )
    assert destructive("dev", data.path, raw, (other, ok)).allowed_by == ok
    assert destructive("dev", data.path, raw, (other,)).blocking


def test_iam_wildcard_grant_is_loud(review):
    build = stack(review, "Delivery/Dev/ModelBuild")
    loud = [c for c in build.iam if c.loud]
    assert len(loud) == 1
    change = loud[0]
    assert change.kind in ("added", "widened")
    assert "s3:*" in change.statement.actions and change.statement.resources == ("*",)
    assert {"all actions", "any resource"} <= set(change.new_risks)
    # Prod's bigger instances change the execution role's sagemaker:InstanceTypes condition: an IAM
    # change the report lists, but not a loud one (nothing widens).
    prod_iam = [c for s in env(review, "prod").stacks for c in s.iam]
    assert prod_iam and not any(c.loud for c in prod_iam)
    assert all("ml.m5.2xlarge" in repr(c) or "ml.m5.4xlarge" in repr(c) for c in prod_iam), prod_iam


def test_security_group_rule_open_to_internet(review):
    network = stack(review, "Delivery/Dev/Network")
    [change] = network.security_groups
    assert change.kind == "added" and change.loud
    rule = change.rule
    assert (rule.direction, rule.protocol, rule.ports, rule.peer) == ("ingress", "tcp", "443", "0.0.0.0/0")
    assert "open to the internet" in rule.risks()


def test_nag_findings_and_acknowledgement(review):
    build = stack(review, "Delivery/Dev/ModelBuild")
    kinds = {(n.kind, n.finding.rule) for n in build.nag}
    assert ("acknowledged", "NIST.800.53.R5-IAMPolicyNoStatementsWithFullAccess") in kinds
    assert ("new finding", "AwsSolutions-IAM5[Action::s3:*]") in kinds
    assert review.head_nag_open > 0
    assert not any(s.nag for s in env(review, "prod").stacks)


def test_model_version_and_cost(review):
    prod = env(review, "prod")
    # The serving stack's endpoint: version 1 on ml.m5.xlarge -> version 3 on ml.m5.2xlarge.
    assert prod.model_before == ["AllTraffic: mlops-prod-merchant-credit v1 (realtime 2-6 x ml.m5.xlarge)"]
    assert prod.model_after == ["AllTraffic: mlops-prod-merchant-credit v3 (realtime 2-6 x ml.m5.2xlarge)"]
    serving = stack(review, "Delivery/Prod/Serving")
    kinds = {c.type: (c.kind, c.replacing_properties) for c in serving.resources}
    assert kinds["AWS::SageMaker::Model"] == ("replaced", ["PrimaryContainer"])
    assert kinds["AWS::SageMaker::EndpointConfig"][0] == "replaced"
    # The endpoint itself moves to the new config in place (guarded rollout): nothing destructive.
    assert kinds.get("AWS::SageMaker::Endpoint", ("modified",))[0] == "modified"
    assert env(review, "prod").destructive == []
    prices = load_prices()
    rate = {t: prices.instance("eu-west-1", t) for t in ("ml.m5.xlarge", "ml.m5.2xlarge", "ml.m5.4xlarge")}
    # Endpoint: 2-6 instances x 730 h at the new rate minus the old one.
    endpoint_low, endpoint_high = (n * 730 * (rate["ml.m5.2xlarge"] - rate["ml.m5.xlarge"]) for n in (2, 6))
    # Processing ml.m5.2xlarge -> ml.m5.4xlarge: every processing job of the pipeline that uses the
    # processing instance type moves, N instances x 0.5 h x 1 run/month (cron on the 1st).
    moved = [line for line in prod.cost_after.lines if "x ml.m5.4xlarge x 0.5 h" in line.item]
    assert moved, [line.item for line in prod.cost_after.lines]
    jobs = 0.0
    for line in moved:
        count = int(line.item.split(": ", 1)[1].split(" x ")[0])
        assert line.low == pytest.approx(count * 0.5 * 1.0 * rate["ml.m5.4xlarge"], abs=0.01)
        jobs += count * 0.5 * (rate["ml.m5.4xlarge"] - rate["ml.m5.2xlarge"])
    assert prod.cost_after.low - prod.cost_before.low == pytest.approx(endpoint_low + jobs, abs=0.05)
    assert prod.cost_after.high - prod.cost_before.high == pytest.approx(endpoint_high + jobs, abs=0.05)
    pipeline = stack(review, "Delivery/Prod/ModelBuild")
    assert "AWS::SageMaker::Pipeline" in [c.type for c in pipeline.resources if c.kind == "modified"]
    assert env(review, "dev").cost_after.low == pytest.approx(env(review, "dev").cost_before.low)


def test_markdown_report(review):
    text = render_report(review)
    assert text.startswith(MARKER)
    assert "[!CAUTION]" in text and "1 destructive change(s)" in text
    first_hazard = text.index("### Stateful resources replaced or deleted")
    assert first_hazard < text.index("### Summary")
    assert "| ⛔ | dev | Delivery/Dev/Data | `RawBucket" in text and "BucketName" in text
    assert "⚠️ new: all actions, any resource" in text
    assert "open to the internet" in text
    assert "dated **" in text and "Left out:" in text
    assert len(text) < 65_536


def test_cli_on_saved_assemblies_exits_3_when_blocked(pipeline_synth, variant, tmp_path, capsys):
    outdir, _ = variant
    out = tmp_path / "report.md"
    code = review_main(
        ["--base-assembly", str(pipeline_synth.outdir), "--head-assembly", str(outdir), "--out", str(out)]
    )
    assert code == 3
    assert out.read_text().startswith(MARKER)
    assert "unallowed destructive change" in capsys.readouterr().err
    # No change at all: exit 0.
    same = ["--base-assembly", str(pipeline_synth.outdir), "--head-assembly", str(pipeline_synth.outdir)]
    assert review_main(same) == 0
