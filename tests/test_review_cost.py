"""Cost arithmetic on a known configuration, and the serving/model-version reading, on a
hand-made template in CloudFormation's shapes (AWS::SageMaker::EndpointConfig ProductionVariants,
AWS::SageMaker::Model PrimaryContainer.ModelPackageName, an autoscaling target), plus the
review's config validation and schedule arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from review.assembly import StackTemplate
from review.cost import estimate, load_prices
from review.schedules import runs_per_month
from review.security import Statement, statement_changes
from review.serving import variants
from review.settings import CostAssumptions, ReviewConfigError, parse_review_config

PACKAGE = "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-prod-merchant-credit/{}"


def serving_template(version: int, instance_type: str) -> dict:
    return {
        "Resources": {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {"PrimaryContainer": {"ModelPackageName": PACKAGE.format(version)}},
            },
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                            "InstanceType": instance_type,
                            "InitialInstanceCount": 2,
                        }
                    ]
                },
            },
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {
                    "EndpointName": "mlops-prod",
                    "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                },
            },
            "Scaling": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "Properties": {
                    "ServiceNamespace": "sagemaker",
                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                    "ResourceId": "endpoint/mlops-prod/variant/AllTraffic",
                    "MinCapacity": 2,
                    "MaxCapacity": 6,
                },
            },
            "ServerlessModel": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {"Containers": [{"ModelDataUrl": "s3://bucket/model.tar.gz"}]},
            },
            "ServerlessConfig": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {
                            "VariantName": "Shadow",
                            "ModelName": {"Ref": "ServerlessModel"},
                            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                        }
                    ]
                },
            },
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "Endpoint1": {
                "Type": "AWS::EC2::VPCEndpoint",
                "Properties": {
                    "VpcEndpointType": "Interface",
                    "SubnetIds": ["subnet-a", "subnet-b", "subnet-c"],
                },
            },
            "Gateway": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {"VpcEndpointType": "Gateway"}},
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
        }
    }


def stack(template: dict) -> StackTemplate:
    return StackTemplate(
        "App/Prod/Serving", "prod", "Serving", "mlops-prod-serving", "222222222222", "eu-west-1", template
    )


ASSUMPTIONS = CostAssumptions(
    hours_per_month=730,
    serverless_invocations_per_month=1_000_000,
    serverless_seconds_per_invocation=0.1,
    s3_gb_per_bucket=100,
    kms_requests_per_month=20_000,
)


def test_variants_and_model_versions():
    found = {v.name: v for v in variants("App/Prod/Serving", serving_template(3, "ml.m5.xlarge"))}
    live, shadow = found["AllTraffic"], found["Shadow"]
    assert (live.kind, live.instance_type, live.initial_count, live.min_capacity, live.max_capacity) == (
        "realtime",
        "ml.m5.xlarge",
        2,
        2,
        6,
    )
    assert live.model == "mlops-prod-merchant-credit v3"
    assert live.describe() == "mlops-prod-merchant-credit v3 (realtime 2-6 x ml.m5.xlarge)"
    assert (shadow.kind, shadow.serverless_memory_mb, shadow.model) == (
        "serverless",
        2048,
        "artifact s3://bucket/model.tar.gz",
    )


def test_scaling_targets_match_their_own_endpoint():
    template = serving_template(3, "ml.m5.xlarge")
    res = template["Resources"]
    res["Endpoint"]["Properties"].pop("EndpointName")
    res["Scaling"]["Properties"]["ResourceId"] = {
        "Fn::Join": ["", ["endpoint/", {"Fn::GetAtt": ["Endpoint", "EndpointName"]}, "/variant/AllTraffic"]]
    }
    res["Config2"] = {
        "Type": "AWS::SageMaker::EndpointConfig",
        "Properties": {
            "EndpointConfigName": "second-config",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": {"Ref": "Model"},
                    "InstanceType": "ml.c5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        },
    }
    res["Endpoint2"] = {
        "Type": "AWS::SageMaker::Endpoint",
        "Properties": {"EndpointConfigName": "second-config"},
    }
    found = {v.endpoint_config: v for v in variants("s", template) if v.name == "AllTraffic"}
    assert (found["Config"].min_capacity, found["Config"].max_capacity) == (2, 6)
    assert (found["Config2"].min_capacity, found["Config2"].max_capacity) == (1, 1)  # no target of its own
    res["Model"]["Properties"]["PrimaryContainer"]["ModelPackageName"] = {"Fn::GetAtt": ["Latest", "Arn"]}
    assert variants("s", template)[0].model == "package resolved at deploy time (${Latest.Arn})"


def test_cost_arithmetic_on_a_known_configuration():
    prices = load_prices()
    raw_config = {"environments": {"prod": {"endpoint": {"kind": "realtime"}}}}
    cost = estimate("prod", [stack(serving_template(3, "ml.m5.xlarge"))], raw_config, ASSUMPTIONS, prices)
    lines = {line.item.split(":")[0]: (line.low, line.high) for line in cost.lines}
    p = prices.region("eu-west-1")
    m5 = p["sagemaker_instance_hour"]["ml.m5.xlarge"]
    assert m5 == 0.256 and p["serverless_gb_second"] == 0.0000224  # the table the numbers below use
    assert lines["Config/AllTraffic"] == pytest.approx((2 * 730 * 0.256, 6 * 730 * 0.256))  # 373.76, 1121.28
    assert lines["ServerlessConfig/Shadow"] == pytest.approx((4.48, 4.48))  # 1e6 x 0.1 s x 2 GB x 0.0000224
    assert lines["Key"] == pytest.approx((1.06, 1.06))  # $1 + 2 x $0.03
    assert lines["Bucket"] == pytest.approx((2.3, 2.3))  # 100 GB x $0.023
    assert lines["Endpoint1"] == pytest.approx((24.09, 24.09))  # 3 AZ x 730 h x $0.011
    assert lines["Alarm"] == pytest.approx((0.1, 0.1))
    assert "Gateway" not in lines  # gateway endpoints are free
    assert (cost.low, cost.high) == pytest.approx((405.79, 1153.31))
    assert cost.unpriced == []
    # A bigger instance: only the endpoint line moves, by the price difference.
    bigger = estimate("prod", [stack(serving_template(3, "ml.m5.2xlarge"))], raw_config, ASSUMPTIONS, prices)
    assert bigger.low - cost.low == pytest.approx(2 * 730 * (0.512 - 0.256), abs=0.01)


def test_unknown_region_and_instance_are_named_not_guessed():
    prices = load_prices()
    template = serving_template(1, "ml.p5.48xlarge")
    cost = estimate("prod", [stack(template)], None, ASSUMPTIONS, prices)
    assert any("ml.p5.48xlarge" in u for u in cost.unpriced)
    far = StackTemplate("A/X/S", "x", "S", "s", "1", "ap-south-2", template)
    assert "ap-south-2" in estimate("x", [far], None, ASSUMPTIONS, prices).unpriced[0]


@pytest.mark.parametrize(
    ("expression", "runs"),
    [
        ("cron(0 3 ? * MON *)", 365.25 / 12 / 7),
        ("cron(0 3 1 * ? *)", 1.0),
        ("rate(1 day)", 365.25 / 12),
        ("rate(6 hours)", 4 * 365.25 / 12),
        ("cron(0 8 ? * MON-FRI *)", 5 * 365.25 / 12 / 7),
        ("cron(0/30 * * * ? *)", 48 * 365.25 / 12),
    ],
)
def test_schedule_runs_per_month(expression, runs):
    assert runs_per_month(expression) == pytest.approx(runs)


def test_review_config_errors_name_the_field():
    with pytest.raises(ReviewConfigError, match=r"allow_destructive\[0\].reason"):
        parse_review_config({"allow_destructive": [{"environment": "dev", "reason": "because"}]})
    with pytest.raises(ReviewConfigError, match="allows every destructive change"):
        parse_review_config({"allow_destructive": [{"reason": "a reason long enough to pass the check"}]})
    with pytest.raises(ReviewConfigError, match=r"cost_assumptions.prod.s3_gb = .*unknown key|prod.s3_gb"):
        parse_review_config({"cost_assumptions": {"prod": {"s3_gb": 3}}})
    config = parse_review_config(
        {"cost_assumptions": {"default": {"s3_gb_per_bucket": 7}, "prod": {"hours_per_month": 1}}}
    )
    assert (
        config.assumptions("prod").s3_gb_per_bucket == 7 and config.assumptions("prod").hours_per_month == 1
    )
    assert config.assumptions("dev").hours_per_month == 730


def test_iam_widening_and_narrowing():
    def st(actions, resources, principals=()):
        return Statement(
            "Policy", "PolicyDocument", "Allow", tuple(actions), tuple(resources), tuple(principals), ""
        )

    scoped = st(["s3:GetObject"], ["arn:aws:s3:::b/*"])
    [widened] = statement_changes([scoped], [st(["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::b/*"])])
    assert widened.kind == "widened" and not widened.loud  # wider, but no new wildcard
    [wild] = statement_changes([scoped], [st(["s3:GetObject"], ["arn:aws:s3:::b/*", "*"])])
    assert wild.kind == "widened" and wild.new_risks == ("any resource",) and wild.loud
    [narrowed] = statement_changes([st(["s3:*"], ["*"])], [st(["s3:GetObject"], ["*"])])
    assert narrowed.kind == "narrowed" and not narrowed.loud
    trust = st(["sts:AssumeRole"], [], ["Service:sagemaker.amazonaws.com"])
    [public] = statement_changes(
        [trust], [st(["sts:AssumeRole"], [], ["AWS:*", "Service:sagemaker.amazonaws.com"])]
    )
    assert "any principal (public)" in public.new_risks


def test_hand_made_assemblies_through_compare_and_report():
    """Base and head as hand-made templates: the served version moves from v3 to v4 behind an
    async variant, a named feature group is replaced (CloudFormation would refuse: same name), and
    a stack disappears (its log group is destroyed)."""
    from review.assembly import Assembly
    from review.compare import compare
    from review.report import render_report
    from review.settings import ReviewConfig

    def serving(version: int) -> dict:
        template = serving_template(version, "ml.m5.xlarge")
        template["Resources"]["Config"]["Properties"]["AsyncInferenceConfig"] = {"OutputConfig": {}}
        template["Resources"]["Scaling"]["Properties"]["MinCapacity"] = 0
        return template

    group = {
        "Type": "AWS::SageMaker::FeatureGroup",
        "Properties": {"FeatureGroupName": "mlops-prod-profile", "RecordIdentifierFeatureName": "id"},
    }
    renamed_id = {
        **group,
        "Properties": {**group["Properties"], "RecordIdentifierFeatureName": "merchant_id"},
    }
    logs = {"Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}}

    def assembly(serving_tpl: dict, group_tpl: dict, with_logs: bool) -> Assembly:
        stacks = [
            StackTemplate("App/Prod/Serving", "prod", "Serving", "s", "2", "eu-west-1", serving_tpl),
            StackTemplate(
                "App/Prod/Features",
                "prod",
                "Features",
                "f",
                "2",
                "eu-west-1",
                {"Resources": {"G": group_tpl}},
            ),
        ]
        if with_logs:
            stacks.append(StackTemplate("App/Prod/Logs", "prod", "Logs", "l", "2", "eu-west-1", logs))
        return Assembly(Path("."), stacks, None)

    review = compare(
        assembly(serving(3), group, True),
        assembly(serving(4), renamed_id, False),
        base_config=None,
        head_config=None,
        config=ReviewConfig(default_assumptions=ASSUMPTIONS),
        prices=load_prices(),
    )
    [prod] = review.environments
    assert prod.model_before[0].startswith(
        "AllTraffic: mlops-prod-merchant-credit v3 (async 0-6 x ml.m5.xlarge)"
    )
    assert prod.model_after[0].startswith("AllTraffic: mlops-prod-merchant-credit v4")
    hazards = {(d.change.logical_id, d.change.kind) for d in prod.destructive}
    assert hazards == {("G", "replaced"), ("Logs", "removed")}
    serving_stack = next(s for s in prod.stacks if s.path == "App/Prod/Serving")
    model = next(c for c in serving_stack.resources if c.logical_id == "Model")  # v3 -> v4: a new model
    assert model.kind == "replaced" and model.replacing_properties == ["PrimaryContainer"]
    assert not [d for d in prod.destructive if d.change.logical_id in ("Model", "Endpoint")]
    features = next(s for s in prod.stacks if s.path == "App/Prod/Features")
    assert [c.logical_id for c in features.name_clashes] == ["G"]
    assert next(s for s in prod.stacks if s.path == "App/Prod/Logs").status == "removed"
    # Async with a minimum of 0: the assumed busy hours at the low end, the maximum at the high end.
    line = next(c for c in prod.cost_after.lines if c.item.startswith("Config/AllTraffic"))
    assert (line.low, line.high) == pytest.approx((100 * 0.256, 6 * 730 * 0.256))
    text = render_report(review)
    assert "Replacements CloudFormation will refuse" in text and "RecordIdentifierFeatureName" in text
    assert "- before: AllTraffic: mlops-prod-merchant-credit v3" in text
    assert "| ⛔ | prod | App/Prod/Logs | `Logs` | AWS::Logs::LogGroup | **delete** |" in text
    # One comment per stage, each with its own marker and only its own environment.
    from review.report import render_stage_reports

    stages = render_stage_reports(review)
    assert set(stages) == {env.name for env in review.environments}
    assert stages["prod"].startswith("<!-- mlops-review:prod -->\n")
    assert "App/Prod/Logs" in stages["prod"]
    for name, stage_text in stages.items():
        others = {env.name for env in review.environments} - {name}
        assert not any(f"### Environment `{other}`" in stage_text for other in others), name
