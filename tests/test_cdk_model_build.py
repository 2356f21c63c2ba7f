"""The model-build stack: CDK deploys exactly the pipeline definition the builder produces, with
every placeholder filled, runs it as a least-privilege role, and stages one image per step.

Uses the shared synths (tests/conftest.py): `pipeline_synth` (dev, prod) and
`environments_synth` (dev, staging with an imported VPC, prod).  The expected dev and prod
definitions are built here with the builder itself (seconds each), once per session.
"""

import json
import re
from pathlib import Path

import pytest

import stacks  # noqa: F401  (first: makes the project's constructs/ importable)
from constructs.sagemaker_pipeline import MAX_DEFINITION_CHARS, PipelineDefinitionError, check_placeholders
from pipeline_steps.common.feature_spec import load_spec
from workflow.definition import placeholders as names
from workflow.definition.build import build_definition
from workflow.definition.environment import pipeline_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS = tuple(names.IMAGE_PLACEHOLDERS)
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
WILDCARD_ACTIONS = {"*", "sagemaker:*", "s3:*", "iam:*", "kms:*", "ec2:*"}
# Actions that take no resource ARN, so their statements name Resource "*".
RESOURCELESS_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
}


_EXPECTED: dict[str, str] = {}


def _expected_definition(config, env_name: str) -> str:
    """`build_definition(spec, pipeline_settings(config, env))`, straight from the builder."""
    settings = pipeline_settings(config, config.environment(env_name))
    key = repr(settings)
    if key not in _EXPECTED:
        _EXPECTED[key] = build_definition(load_spec(REPO_ROOT / config.feature_spec), settings)
    return _EXPECTED[key]


def _expected_placeholders(settings) -> set[str]:
    return {
        names.EXECUTION_ROLE,
        names.ARTIFACT_BUCKET,
        names.RAW_BUCKET,
        names.KMS_KEY,
        names.FEATURE_SPEC_URI,
        names.SECURITY_GROUP,
        *(names.subnet_placeholder(i) for i in range(settings.subnet_count)),
        *_images(settings).values(),
        # On Spark, Preprocess runs on AWS's Spark image with the step code from two assets.
        *(
            [names.SPARK_CODE_BUCKET, names.SPARK_ENTRY_FILE, names.SPARK_CODE_FILE]
            if settings.preprocess_engine == "spark"
            else []
        ),
    }


def _images(settings) -> dict[str, str]:
    """Step -> image placeholder: every step's own image (Preprocess's not where it runs on Spark)."""
    spark = settings.preprocess_engine == "spark"
    return {k: v for k, v in names.IMAGE_PLACEHOLDERS.items() if not (spark and k == "preprocess")}


def _stage(synth, env_name):
    if synth.app.node.try_find_child("Delivery") is not None:
        return synth.app.node.find_child("Delivery").stages[env_name]
    return synth.app.node.find_child(env_name.capitalize())


def _model_build(synth, env_name):
    stack = _stage(synth, env_name).model_build
    return stack, synth.template(stack).to_json()


def _one(template, kind):
    (item,) = [(k, v) for k, v in template["Resources"].items() if v["Type"] == kind]
    return item


def _pipeline(template):
    _, pipeline = _one(template, "AWS::SageMaker::Pipeline")
    body, variables = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return pipeline["Properties"], body, variables


def _role_policy(template):
    role_id, role = _one(template, "AWS::IAM::Role")
    policies = [p for p in template["Resources"].values() if p["Type"] == "AWS::IAM::Policy"]
    assert len(policies) == 1 and policies[0]["Properties"]["Roles"] == [{"Ref": role_id}]
    return role_id, role, policies[0]["Properties"]["PolicyDocument"]["Statement"]


def _as_list(value):
    return value if isinstance(value, list) else [value]


# ---- the definition ---------------------------------------------------------------------------
@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_pipeline_body_is_fn_sub_of_the_builders_json_byte_for_byte(pipeline_synth, env_name):
    config = pipeline_synth.config
    settings = pipeline_settings(config, config.environment(env_name))
    _, template = _model_build(pipeline_synth, env_name)
    props, body, variables = _pipeline(template)
    expected = _expected_definition(config, env_name)
    assert body == expected  # str equality: byte for byte
    assert props["PipelineName"] == settings.pipeline_name
    # The variable map covers exactly the placeholders: the ones in the text, and the ones
    # placeholders.py defines for this environment.
    assert set(variables) == set(PLACEHOLDER.findall(expected)) == _expected_placeholders(settings)


def test_staging_with_an_imported_vpc_fills_its_subnets(environments_synth):
    config = environments_synth.config
    staging = config.environment("staging")
    _, template = _model_build(environments_synth, "staging")
    _, _, variables = _pipeline(template)
    subnets = list(staging.vpc.subnet_ids)
    assert [variables[f"Subnet{i}"] for i in range(len(subnets))] == subnets
    assert set(variables) == _expected_placeholders(pipeline_settings(config, staging))


def test_variables_point_at_the_role_buckets_key_network_and_spec(pipeline_synth):
    config = pipeline_synth.config
    dev = config.environment("dev")
    stack, template = _model_build(pipeline_synth, "dev")
    props, _, variables = _pipeline(template)
    role_id, role, _ = _role_policy(template)
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Condition": {
                "StringEquals": {"aws:SourceAccount": dev.account},
                "ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:{dev.region}:{dev.account}:*"},
            },
        }
    ]
    assert variables["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]} == props["RoleArn"]
    assert variables["ArtifactBucket"] == config.bucket_name(dev, "artifacts")
    assert variables["RawBucket"] == config.bucket_name(dev, "raw")
    data_key = _stage(pipeline_synth, "dev").data
    assert variables["KmsKeyArn"]["Fn::GetStackOutput"]["StackName"] == data_key.stack_name
    network = _stage(pipeline_synth, "dev").network.stack_name
    for name in ("SecurityGroupId", "Subnet0", "Subnet1"):
        assert variables[name]["Fn::GetStackOutput"]["StackName"] == network
    spec_object = variables["FeatureSpecUri"]
    assert re.fullmatch(r"s3://cdk-hnb659fds-assets-111111111111-eu-west-1/[0-9a-f]{64}\.yaml", spec_object)


# ---- registry ---------------------------------------------------------------------------------
@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_model_package_group_has_the_configured_name(pipeline_synth, env_name):
    config = pipeline_synth.config
    settings = pipeline_settings(config, config.environment(env_name))
    _, template = _model_build(pipeline_synth, env_name)
    _, group = _one(template, "AWS::SageMaker::ModelPackageGroup")
    assert group["Properties"]["ModelPackageGroupName"] == settings.model_package_group
    assert group["Properties"]["ModelPackageGroupDescription"]
    assert {"Key": "environment", "Value": env_name} in group["Properties"]["Tags"]
    _, body, _ = _pipeline(template)
    (register,) = [s for s in _all_steps(json.loads(body)) if s["Type"] == "RegisterModel"]
    assert register["Arguments"]["ModelPackageGroupName"] == settings.model_package_group


def _all_steps(definition):
    for step in definition["Steps"]:
        yield step
        for branch in ("IfSteps", "ElseSteps"):
            yield from step.get("Arguments", {}).get(branch, [])


# ---- images -----------------------------------------------------------------------------------
def test_one_image_asset_per_step_staged_from_the_repo_root(pipeline_synth):
    stack, template = _model_build(pipeline_synth, "dev")
    outdir = Path(_stage_outdir(stack))
    manifest = json.loads((outdir / f"{stack.artifact_id}.assets.json").read_text())
    images = {d["source"]["dockerFile"]: d["source"] for d in manifest["dockerImages"].values()}
    assert sorted(images) == sorted(f"containers/{step}/Dockerfile" for step in STEPS)
    _, _, variables = _pipeline(template)
    for step in STEPS:
        source = images[f"containers/{step}/Dockerfile"]
        assert source["platform"] == "linux/amd64"
        staged = (outdir / source["directory"]).resolve()
        # The image tag in the definition is this asset's hash.
        assert staged.name.removeprefix("asset.") in json.dumps(variables[names.IMAGE_PLACEHOLDERS[step]])
        # The context holds what the Dockerfile copies, and nothing of other steps or the repo.
        dockerfile = (staged / "containers" / step / "Dockerfile").read_text()
        for copied in re.findall(r"^COPY\s+(\S+)\s", dockerfile, flags=re.M):
            assert (staged / copied).exists(), (step, copied)
        top = {p.name for p in staged.iterdir()}
        assert top <= {"pipeline_steps", "containers", ".dockerignore"}, top
        assert {p.name for p in (staged / "containers").iterdir()} == {step}
        others = {p.name for p in (staged / "pipeline_steps").iterdir()} - {"__init__.py", "common", step}
        assert not others, (step, others)
        assert not list(staged.rglob("__pycache__"))


def _stage_outdir(stack):
    from aws_cdk import Stage

    return Stage.of(stack).outdir


# ---- the execution role -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "synth_name, env_name",
    [("pipeline_synth", "dev"), ("pipeline_synth", "prod"), ("environments_synth", "staging")],
)
def test_execution_role_is_least_privilege(synth_name, env_name, request):
    synth = request.getfixturevalue(synth_name)
    stack, template = _model_build(synth, env_name)
    _, role, statements = _role_policy(template)
    assert not [p for p in template["Resources"].values() if p["Type"] == "AWS::IAM::ManagedPolicy"]
    assert "ManagedPolicyArns" not in role["Properties"]  # above all no *FullAccess policy
    assert "FullAccess" not in json.dumps(template)
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = set(_as_list(statement["Action"]))
        assert not actions & WILDCARD_ACTIONS, statement
        if "iam:PassRole" in actions:
            assert actions == {"iam:PassRole"}
            passed_to = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
            assert statement["Condition"] == passed_to
            assert statement["Resource"] == {"Fn::GetAtt": [_one(template, "AWS::IAM::Role")[0], "Arn"]}
        if "*" in _as_list(statement["Resource"]):
            assert actions <= RESOURCELESS_ACTIONS, statement
    # The ENI and job-creation statements carry their VPC conditions.
    by_sid = {s.get("Sid"): s for s in statements}
    assert "ec2:Vpc" in json.dumps(by_sid["JobNetworkInterfacesInTheVpcOnly"]["Condition"])
    create = by_sid["CreateJobsInTheVpcOnly"]["Condition"]
    assert create["Bool"] == {
        "sagemaker:NetworkIsolation": "true",
        "sagemaker:InterContainerTrafficEncryption": "true",
    }
    assert (
        len(create["ForAllValues:StringEquals"]["sagemaker:VpcSubnets"])
        == pipeline_settings(synth.config, synth.config.environment(env_name)).subnet_count
    )


def test_wildcard_resources_only_where_acknowledged(pipeline_synth):
    stack, template = _model_build(pipeline_synth, "dev")
    _, _, statements = _role_policy(template)
    path = f"{stack.node.path}/ExecutionRole/Role/DefaultPolicy/Resource"
    acknowledged = {
        v["ruleName"]
        for report in pipeline_synth.validation_report["pluginReports"]
        for v in report["suppressedViolations"]
        if any(c["constructPath"] == path for c in v["violatingConstructs"])
    }
    wildcards = {r for s in statements for r in _as_list(s["Resource"]) if isinstance(r, str) and "*" in r}
    assert wildcards  # jobs, log groups, data prefixes, model packages, resource-less actions
    for resource in wildcards:
        assert f"AwsSolutions-IAM5[Resource::{resource}]" in acknowledged, resource
    # Every acknowledgement on this policy names one exact finding that nag raised.
    assert "NIST.800.53.R5-IAMNoInlinePolicy" in acknowledged
    expected_rules = ("AwsSolutions-IAM5[", "NIST.800.53.R5-IAMNoInlinePolicy")
    assert all(rule.startswith(expected_rules) for rule in acknowledged)
    # Jobs are scoped to the names SageMaker Pipelines gives them.
    jobs = {r for r in wildcards if ":processing-job/" in r or ":training-job/" in r}
    assert jobs == {
        f"arn:aws:sagemaker:eu-west-1:111111111111:{kind}/pipelines-*"
        for kind in ("processing-job", "training-job")
    }


# ---- the synth-time checks --------------------------------------------------------------------
def test_a_placeholder_without_a_variable_or_a_variable_without_a_placeholder_fails():
    text = '{"a": "${RawBucket}", "b": "s3://${ArtifactBucket}/x"}'
    names_found = check_placeholders(text, {"RawBucket": "r", "ArtifactBucket": "a"})
    assert names_found == ["ArtifactBucket", "RawBucket"]
    missing = r"placeholders without a variable \['ArtifactBucket'\]"
    with pytest.raises(PipelineDefinitionError, match=missing):
        check_placeholders(text, {"RawBucket": "r"})
    with pytest.raises(PipelineDefinitionError, match=r"variables without a placeholder \['Subnet2'\]"):
        check_placeholders(text, {"RawBucket": "r", "ArtifactBucket": "a", "Subnet2": "s"})
    with pytest.raises(PipelineDefinitionError, match="not plain names"):
        check_placeholders('{"a": "${AWS::Region}"}', {"AWS::Region": "x"})


def test_a_definition_that_could_outgrow_create_pipeline_fails():
    text = '{"a": "' + "x" * (MAX_DEFINITION_CHARS - 1000) + '${RawBucket}"}'
    with pytest.raises(PipelineDefinitionError, match="could exceed"):
        check_placeholders(text, {"RawBucket": "r"})
