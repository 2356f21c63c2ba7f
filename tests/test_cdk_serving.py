"""The serving stack: per environment, the endpoint kind its config asks for, serving the pinned
model package version, with capture, autoscaling, guarded rollouts, dashboards and alarms.

Uses the shared synths (tests/conftest.py): `pipeline_synth` (dev: serverless, prod: real-time
with a canary rollout), `environments_synth` (staging: asynchronous, scale to zero) and
`serving_synth` (svl: serverless with provisioned concurrency, mme: multi-model, bat: batch
transform, prod: real-time with a rolling update).  Requests (the L1 properties and the
scheduled CreateTransformJob) are checked against botocore's SageMaker service model.
"""

import json
import re
from functools import lru_cache

import pytest

import stacks  # noqa: F401  (first: makes the project's constructs/ importable)
from workflow.definition.environment import pipeline_settings

# The tests pick their synth by name (parametrized); naming all three here puts every test of
# this module with the other synth users (tests/conftest.py groups them on one xdist worker).
pytestmark = pytest.mark.usefixtures("pipeline_synth", "environments_synth", "serving_synth")

KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"
EXECUTION_ID = "d32c5kddcf5bb8c3"  # the form of Scheduler's <aws.scheduler.execution-id>


# ---- helpers ------------------------------------------------------------------------------------
def _stage(synth, env_name):
    if synth.app.node.try_find_child("Delivery") is not None:
        return synth.app.node.find_child("Delivery").stages[env_name]
    return synth.app.node.find_child(env_name.capitalize())


def _serving(synth, env_name):
    stack = _stage(synth, env_name).serving
    return stack, synth.template(stack).to_json()


def _of_type(template, kind):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _one(template, kind):
    (item,) = _of_type(template, kind).items()
    return item


def _props(template, kind):
    return _one(template, kind)[1]["Properties"]


def _group(synth, env_name):
    config = synth.config
    return pipeline_settings(config, config.environment(env_name)).model_package_group


def _resolve(value):
    """Template values -> plain request values: intrinsics become sample strings of their kind."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Join"}:
            sep, parts = value["Fn::Join"]
            return sep.join(str(_resolve(p)) for p in parts)
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "ModelName":
            return "model-from-cloudformation"
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "EndpointConfigName":
            return "endpoint-config-from-cloudformation"
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "Arn":
            return "arn:aws:iam::111111111111:role/from-cloudformation"
        if set(value) == {"Fn::GetStackOutput"}:
            name = value["Fn::GetStackOutput"]["OutputName"]
            if "Key" in name:
                return KEY_ARN
            if "Subnet" in name:
                return "subnet-0123456789abcdef0"
            if "SecurityGroup" in name:
                return "sg-0123456789abcdef0"
        if set(value) == {"Ref"}:
            if value["Ref"] == "AWS::Partition":
                return "aws"
            if value["Ref"].startswith(("Async", "Alarms")):  # this stack's SNS topics
                return f"arn:aws:sns:eu-west-1:111111111111:{value['Ref']}"
            return f"ref-{value['Ref']}"
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


@lru_cache(maxsize=1)
def _sagemaker_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def _check_request(operation: str, request: dict) -> None:
    """botocore's validator (types, required, lengths, ranges), plus each string shape's
    pattern and enum, which the validator leaves to the service."""
    from botocore.validate import ParamValidator

    shape = _sagemaker_model().operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    problems: list[str] = []

    def walk(value, shape, path):
        if shape.type_name == "structure":
            for name, member in value.items():
                walk(member, shape.members[name], f"{path}.{name}")
        elif shape.type_name == "list":
            for i, item in enumerate(value):
                walk(item, shape.member, f"{path}[{i}]")
        elif shape.type_name == "string":
            pattern, enum = shape.metadata.get("pattern"), shape.enum
            if pattern and not re.fullmatch(pattern, value):
                problems.append(f"{path} = {value!r} does not match {pattern}")
            if enum and value not in enum:
                problems.append(f"{path} = {value!r} not in {enum}")

    walk(request, shape, operation)
    assert problems == []


def _without_tags(props):
    return {k: v for k, v in props.items() if k != "Tags"}


ENDPOINTS = [  # (synth fixture, environment, kind)
    ("pipeline_synth", "dev", "serverless"),
    ("pipeline_synth", "prod", "realtime"),
    ("environments_synth", "staging", "async"),
    ("serving_synth", "svl", "serverless"),
    ("serving_synth", "mme", "multi-model"),
    ("serving_synth", "prod", "realtime"),
]
ALL = [*ENDPOINTS, ("serving_synth", "bat", "batch")]


# ---- every environment ------------------------------------------------------------------------
@pytest.mark.parametrize("synth_name,env_name,kind", ALL, ids=[f"{e}-{k}" for _, e, k in ALL])
def test_serves_the_pinned_model_package_version(request, synth_name, env_name, kind):
    synth = request.getfixturevalue(synth_name)
    env = synth.config.environment(env_name)
    stack, template = _serving(synth, env_name)
    expected = (
        f"arn:aws:sagemaker:{env.region}:{env.account}:model-package/"
        f"{_group(synth, env_name)}/{env.model_package_version}"
    )
    assert stack.model_package_arn == expected
    assert template["Outputs"]["ModelPackageArn"]["Value"] == expected  # visible in a diff
    container = _props(template, "AWS::SageMaker::Model")["PrimaryContainer"]
    if kind == "multi-model":  # the prefix, not a package
        assert "ModelPackageName" not in container
    else:
        assert container == {"ModelPackageName": expected}


@pytest.mark.parametrize("synth_name,env_name,kind", ENDPOINTS, ids=[f"{e}-{k}" for _, e, k in ENDPOINTS])
def test_endpoint_is_the_group_name_with_the_allTraffic_variant(request, synth_name, env_name, kind):
    synth = request.getfixturevalue(synth_name)
    stack, template = _serving(synth, env_name)
    name = _group(synth, env_name)
    assert (stack.endpoint_name, stack.variant_name) == (name, "AllTraffic")
    endpoint = _props(template, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == name
    (variant,) = _props(template, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    env = synth.config.environment(env_name)
    assert stack.endpoint_arn.endswith(f":{env.account}:endpoint/{name}")


@pytest.mark.parametrize("synth_name,env_name,kind", ALL, ids=[f"{e}-{k}" for _, e, k in ALL])
def test_l1_properties_are_valid_sagemaker_requests(request, synth_name, env_name, kind):
    """The Model, EndpointConfig and Endpoint properties, as CreateModel / CreateEndpointConfig /
    CreateEndpoint requests: botocore's model catches a wrong field, type, enum or pattern."""
    synth = request.getfixturevalue(synth_name)
    _, template = _serving(synth, env_name)
    model = _resolve(_without_tags(_props(template, "AWS::SageMaker::Model")))
    _check_request("CreateModel", {"ModelName": "served-model", **model})
    if kind == "batch":
        assert not _of_type(template, "AWS::SageMaker::EndpointConfig")
        return
    config = _resolve(_without_tags(_props(template, "AWS::SageMaker::EndpointConfig")))
    _check_request("CreateEndpointConfig", {"EndpointConfigName": "served-config", **config})
    endpoint = _resolve(_without_tags(_props(template, "AWS::SageMaker::Endpoint")))
    # CloudFormation's update-only properties are UpdateEndpoint's.
    update_only = {
        k: endpoint.pop(k)
        for k in ("RetainAllVariantProperties", "ExcludeRetainedVariantProperties")
        if k in endpoint
    }
    _check_request("CreateEndpoint", endpoint)
    _check_request(
        "UpdateEndpoint",
        {"EndpointName": endpoint["EndpointName"], "EndpointConfigName": "next", **update_only},
    )
    # Autoscaled endpoints keep the scaled instance count through an update; capture follows config.
    assert bool(update_only) == (kind in ("realtime", "async", "multi-model"))
    if update_only:
        assert update_only == {
            "RetainAllVariantProperties": True,
            "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}],
        }


# ---- per kind ---------------------------------------------------------------------------------
def test_prod_realtime_capture_autoscaling_canary_rollout(pipeline_synth):
    prod = pipeline_synth.config.environment("prod")
    stack, template = _serving(pipeline_synth, "prod")
    config = _props(template, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == prod.instances.endpoint
    assert variant["InitialInstanceCount"] == prod.instance_counts.endpoint
    assert "KmsKeyId" in config  # instance volumes with the project key
    capture = config["DataCaptureConfig"]
    destination = f"s3://{pipeline_synth.config.bucket_name(prod, 'capture')}/datacapture"
    assert stack.capture_destination == destination == capture["DestinationS3Uri"]
    assert capture["EnableCapture"] and capture["InitialSamplingPercentage"] == 100
    assert capture["KmsKeyId"] == config["KmsKeyId"]
    assert [o["CaptureMode"] for o in capture["CaptureOptions"]] == ["Input", "Output"]
    model = _props(template, "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is True and len(model["VpcConfig"]["Subnets"]) == prod.vpc.max_azs
    target = _props(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target == {
        **target,
        "ResourceId": f"endpoint/{stack.endpoint_name}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 2,
        "MaxCapacity": 6,
    }
    assert "RoleARN" not in target  # Application Auto Scaling's service-linked role
    tracking = _props(template, "AWS::ApplicationAutoScaling::ScalingPolicy")[
        "TargetTrackingScalingPolicyConfiguration"
    ]
    assert (
        tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert (tracking["TargetValue"], tracking["ScaleInCooldown"]) == (200, 600)
    deployment = _props(template, "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 600,
    }
    assert deployment["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 600


def test_rolling_update_with_a_configured_extra_rollback_alarm(serving_synth):
    _, template = _serving(serving_synth, "prod")
    deployment = _props(template, "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    assert "BlueGreenUpdatePolicy" not in deployment
    rolling = deployment["RollingUpdatePolicy"]
    assert rolling["MaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    names = deployment["AutoRollbackConfiguration"]["Alarms"]
    assert {"AlarmName": "mlops-prod-drift"} in names  # from config: an alarm of another stack


@pytest.mark.parametrize("synth_name", ["pipeline_synth", "serving_synth"])
def test_rollback_alarms_exist_in_the_same_template(request, synth_name):
    synth = request.getfixturevalue(synth_name)
    _, template = _serving(synth, "prod")
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    rollback = _props(template, "AWS::SageMaker::Endpoint")["DeploymentConfig"]["AutoRollbackConfiguration"]
    own = [a["AlarmName"]["Ref"] for a in rollback["Alarms"] if isinstance(a["AlarmName"], dict)]
    assert len(own) == 2 and all(ref in alarms for ref in own)
    name = _group(synth, "prod")
    assert sorted(alarms[ref]["Properties"]["AlarmName"] for ref in own) == [
        f"{name}-5xx-rate",
        f"{name}-p99-latency",
    ]
    endpoint_id, endpoint = _one(template, "AWS::SageMaker::Endpoint")
    assert set(own) <= set(endpoint["DependsOn"])  # alarms exist before the update that watches them
    # SageMaker reads the rollback alarms with the execution role: DescribeAlarms on exactly them.
    (describe,) = [s for s in _execution_policy(template) if s["Action"] == "cloudwatch:DescribeAlarms"]
    resources = describe["Resource"] if isinstance(describe["Resource"], list) else [describe["Resource"]]
    assert len(resources) == len(rollback["Alarms"])
    text = json.dumps(resources)
    assert all(f'"Ref": "{ref}"' in text for ref in own)
    for extra in [a["AlarmName"] for a in rollback["Alarms"] if isinstance(a["AlarmName"], str)]:
        assert f":alarm:{extra}" in text


def test_dev_serverless_has_no_vpc_isolation_capture_or_rollout(pipeline_synth):
    dev = pipeline_synth.config.environment("dev")
    stack, template = _serving(pipeline_synth, "dev")
    model = _props(template, "AWS::SageMaker::Model")
    assert "VpcConfig" not in model and model["EnableNetworkIsolation"] is False
    config = _props(template, "AWS::SageMaker::EndpointConfig")
    assert "DataCaptureConfig" not in config and stack.capture_destination is None
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    assert "DeploymentConfig" not in _props(template, "AWS::SageMaker::Endpoint")
    assert not _of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert dev.endpoint.serverless.max_concurrency == 5


def test_serverless_provisioned_concurrency_is_autoscaled(serving_synth):
    _, template = _serving(serving_synth, "svl")
    (variant,) = _props(template, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": 3072,
        "MaxConcurrency": 20,
        "ProvisionedConcurrency": 4,
    }
    target = _props(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["ScalableDimension"], target["MinCapacity"], target["MaxCapacity"]) == (
        "sagemaker:variant:DesiredProvisionedConcurrency",
        4,
        20,
    )
    tracking = _props(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    metric = tracking["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    assert metric["PredefinedMetricType"] == "SageMakerVariantProvisionedConcurrencyUtilization"


def test_async_outputs_topics_and_scale_to_zero(environments_synth):
    config = environments_synth.config
    staging = config.environment("staging")
    stack, template = _serving(environments_synth, "staging")
    name = stack.endpoint_name
    endpoint_config = _props(template, "AWS::SageMaker::EndpointConfig")
    async_config = endpoint_config["AsyncInferenceConfig"]
    output = async_config["OutputConfig"]
    capture_bucket = config.bucket_name(staging, "capture")
    assert output["S3OutputPath"] == f"s3://{capture_bucket}/async/{name}/output"
    assert output["S3FailurePath"] == f"s3://{capture_bucket}/async/{name}/failure"
    assert (
        output["KmsKeyId"]["Fn::GetStackOutput"]["StackName"]
        == _stage(environments_synth, "staging").data.stack_name
    )
    topics = _of_type(template, "AWS::SNS::Topic")
    notification = output["NotificationConfig"]
    for field in ("SuccessTopic", "ErrorTopic"):
        assert notification[field]["Ref"] in topics
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics.values())
    assert async_config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 2}
    assert endpoint_config["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    target_id, target = _one(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (0, 2)
    policies = {
        p["Properties"]["PolicyType"]: (k, p["Properties"])
        for k, p in _of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
    }
    tracking = policies["TargetTrackingScaling"][1]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["CustomizedMetricSpecification"]["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert tracking["TargetValue"] == 10
    step_id, step = policies["StepScaling"]
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in _of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    from_zero = alarms[f"{name}-backlog-without-capacity"]
    assert from_zero["MetricName"] == "HasBacklogWithoutCapacity" and from_zero["AlarmActions"] == [
        {"Ref": step_id}
    ]
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]
    # The model's role publishes to the two topics only.
    role_policy = _execution_policy(template)
    publish = [s for s in role_policy if s["Action"] == "sns:Publish"]
    published = [
        r["Ref"]
        for s in publish
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert sorted(published) == sorted(t for t in topics if "Async" in t)


def test_multi_model_serves_a_prefix(serving_synth):
    config = serving_synth.config
    mme = config.environment("mme")
    _, template = _serving(serving_synth, "mme")
    container = _props(template, "AWS::SageMaker::Model")["PrimaryContainer"]
    assert container == {
        "Image": mme.endpoint.multi_model.image_uri,
        "ModelDataUrl": f"s3://{config.bucket_name(mme, 'artifacts')}/merchant-models/",
        "Mode": "MultiModel",
    }
    reads = _s3_resources(_execution_policy(template), "s3:GetObject*")
    assert reads == [f"arn:aws:s3:::{config.bucket_name(mme, 'artifacts')}/merchant-models/*"]


def test_batch_transform_is_scheduled_with_a_valid_request(serving_synth):
    config = serving_synth.config
    bat = config.environment("bat")
    stack, template = _serving(serving_synth, "bat")
    assert stack.endpoint is None and stack.endpoint_arn is None
    assert not _of_type(template, "AWS::SageMaker::Endpoint")
    schedule = _props(template, "AWS::Scheduler::Schedule")
    assert (
        schedule["ScheduleExpression"] == "cron(30 1 * * ? *)"
        and schedule["ScheduleExpressionTimezone"] == "UTC"
    )
    target = schedule["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:createTransformJob"
    body = _resolve(target["Input"]).replace("<aws.scheduler.execution-id>", EXECUTION_ID)
    job = json.loads(body)
    _check_request("CreateTransformJob", job)
    name = stack.endpoint_name
    assert job["TransformJobName"] == f"{name}-{EXECUTION_ID}"
    assert (
        job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        == f"s3://{config.bucket_name(bat, 'raw')}/scoring/"
    )
    assert job["TransformOutput"]["S3OutputPath"] == (
        f"s3://{config.bucket_name(bat, 'artifacts')}/batch-transform/{name}/{EXECUTION_ID}/"
    )
    assert job["TransformResources"]["InstanceCount"] == 2
    assert job["TransformOutput"]["KmsKeyId"] == job["TransformResources"]["VolumeKmsKeyId"] == KEY_ARN
    # The schedule's role: create only these jobs, pass only the model's role.
    roles = _of_type(template, "AWS::IAM::Role")
    scheduler_role = next(
        k for k, r in roles.items() if "scheduler" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    )
    assert target["RoleArn"] == {"Fn::GetAtt": [scheduler_role, "Arn"]}
    statements = _policy_of(template, scheduler_role)
    create = next(s for s in statements if s["Action"] == "sagemaker:CreateTransformJob")
    assert _resolve(create["Resource"]).endswith(f":transform-job/{name}-*")
    pass_role = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # A failed job is reported.
    (rule,) = [
        r["Properties"]
        for r in _of_type(template, "AWS::Events::Rule").values()
        if "Transform Job" in json.dumps(r)
    ]
    assert rule["EventPattern"]["detail"]["TransformJobStatus"] == ["Failed"]


# ---- observability ----------------------------------------------------------------------------
@pytest.mark.parametrize("synth_name,env_name,kind", ENDPOINTS, ids=[f"{e}-{k}" for _, e, k in ENDPOINTS])
def test_dashboard_and_alarms_to_the_encrypted_topic(request, synth_name, env_name, kind):
    synth = request.getfixturevalue(synth_name)
    stack, template = _serving(synth, env_name)
    name = stack.endpoint_name
    dashboard = _props(template, "AWS::CloudWatch::Dashboard")
    assert dashboard["DashboardName"] == name
    body = _resolve(dashboard["DashboardBody"])  # the dashboard JSON, as CloudWatch reads it
    expected = ["Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "p50", "p99"]
    if kind == "async":  # what asynchronous endpoints publish instead of Invocations, OverheadLatency
        expected += ["InvocationsProcessed", "TimeInBacklog", "InvocationFailures"]
        expected += ["ApproximateBacklogSize", "HasBacklogWithoutCapacity"]
        assert '"AWS/SageMaker","Invocations"' not in body and "OverheadLatency" not in body
    else:
        expected += ['"AWS/SageMaker","Invocations"', "OverheadLatency", "InvocationModelErrors"]
    if kind == "serverless":
        expected.append("ModelSetupTime")
    else:  # instance kinds: utilization and the instance count (CPU samples per minute)
        expected += ["CPUUtilization", "MemoryUtilization", "DiskUtilization", "SampleCount"]
    assert [m for m in expected if m not in body] == []
    topic_id, topic = _one_alarm_topic(template, name)
    assert (
        topic["Properties"]["KmsMasterKeyId"]["Fn::GetStackOutput"]["StackName"]
        == _stage(synth, env_name).data.stack_name
    )
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in _of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    env = synth.config.environment(env_name)
    wanted = {f"{name}-5xx-rate", f"{name}-p99-latency", f"{name}-model-errors"}
    if env.endpoint.alarms.no_invocations_minutes:
        wanted.add(f"{name}-no-invocations")
    assert wanted <= set(alarms)
    for alarm_name in wanted:
        assert alarms[alarm_name]["AlarmActions"] == [{"Ref": topic_id}], alarm_name
    latency = alarms[f"{name}-p99-latency"]
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == (
        "p99",
        env.endpoint.alarms.p99_latency_ms * 1000,
    )
    assert stack.alarm_topic.topic_name  # exposed for the monitoring stack


def test_no_traffic_alarm_when_traffic_is_expected(serving_synth):
    _, template = _serving(serving_synth, "prod")
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in _of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    silent = alarms["mlops-prod-merchant-credit-no-invocations"]
    assert (silent["MetricName"], silent["Period"], silent["ComparisonOperator"]) == (
        "Invocations",
        1800,
        "LessThanThreshold",
    )
    assert silent["TreatMissingData"] == "breaching"  # no data at all is silence too


def test_cloudwatch_may_use_the_key_only_for_this_endpoints_alarms(pipeline_synth):
    data = _stage(pipeline_synth, "prod").data
    # The data key (the environment also has a logs key, which alarms do not use).
    keys = pipeline_synth.template(data).find_resources("AWS::KMS::Key")
    key = keys[next(k for k in keys if k.startswith("DataKey"))]["Properties"]
    statements = {s.get("Sid"): s for s in key["KeyPolicy"]["Statement"]}
    cloudwatch = statements["CloudWatchAlarmsMlopsProdMerchantCreditServingAlarms"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":alarm:mlops-prod-merchant-credit-*")
    assert cloudwatch["Condition"]["StringEquals"]["aws:SourceAccount"] == "222222222222"


def test_registry_approval_is_recorded_for_the_next_pull_request(pipeline_synth):
    stack, template = _serving(pipeline_synth, "prod")
    (rule,) = [
        r["Properties"]
        for r in _of_type(template, "AWS::Events::Rule").values()
        if "Model Package" in json.dumps(r)
    ]
    assert rule["EventPattern"]["detail"] == {
        "ModelPackageGroupName": [stack.endpoint_name],
        "ModelApprovalStatus": ["Approved"],
    }
    (target,) = rule["Targets"]
    assert "environments.prod.model_package_version" in json.dumps(target["InputTransformer"])


# ---- least privilege --------------------------------------------------------------------------
@pytest.mark.parametrize("synth_name,env_name,kind", ENDPOINTS, ids=[f"{e}-{k}" for _, e, k in ENDPOINTS])
def test_execution_role_reads_its_artifacts_and_writes_only_its_prefixes(request, synth_name, env_name, kind):
    synth = request.getfixturevalue(synth_name)
    config, env = synth.config, synth.config.environment(env_name)
    stack, template = _serving(synth, env_name)
    statements = _execution_policy(template)
    name = stack.endpoint_name
    artifacts, capture = config.bucket_name(env, "artifacts"), config.bucket_name(env, "capture")
    reads = _s3_resources(statements, "s3:GetObject*")
    if kind != "multi-model":
        expected_reads = [f"arn:aws:s3:::{artifacts}/{name.replace('merchant-credit', 'model-build')}/*"]
        if kind == "async":  # the request objects callers upload
            expected_reads.append(f"arn:aws:s3:::{capture}/async/{name}/input/*")
            assert stack.async_input_prefix == f"s3://{capture}/async/{name}/input/"
        assert sorted(reads) == sorted(expected_reads)
    writes = _s3_resources(statements, "s3:PutObject")
    expected = []
    if env.endpoint.capture.enabled:
        expected.append(f"arn:aws:s3:::{capture}/datacapture/{name}/*")
    if kind == "async":
        expected += [f"arn:aws:s3:::{capture}/async/{name}/{part}/*" for part in ("output", "failure")]
    assert sorted(writes) == sorted(expected)
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert not any(a.endswith(":*") or a == "*" for a in actions)
    assert not {a for a in actions if a.startswith("sagemaker:")}  # the model calls no SageMaker API


def test_invoking_is_granted_to_configured_roles_only(environments_synth, serving_synth):
    for synth, env_name in ((environments_synth, "staging"), (serving_synth, "prod")):
        env = synth.config.environment(env_name)
        stack, template = _serving(synth, env_name)
        policy = _props(template, "AWS::IAM::ManagedPolicy")
        statement, *objects = policy["PolicyDocument"]["Statement"]
        assert statement["Action"] == ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync"]
        if env.endpoint.kind == "async":  # put requests, get results, under this endpoint's prefixes only
            capture = synth.config.bucket_name(env, "capture")
            by_sid = {s["Sid"]: s for s in objects}
            assert _resolve(by_sid["PutAsyncRequests"]["Resource"]) == (
                f"arn:aws:s3:::{capture}/async/{stack.endpoint_name}/input/*"
            )
            assert sorted(_resolve(by_sid["GetAsyncResults"]["Resource"])) == [
                f"arn:aws:s3:::{capture}/async/{stack.endpoint_name}/{part}/*"
                for part in ("failure", "output")
            ]
            assert sorted(by_sid["UseTheDataKeyForThoseObjects"]["Action"]) == [
                "kms:Decrypt",
                "kms:GenerateDataKey",
            ]
        else:
            assert objects == []
        assert (
            _resolve(statement["Resource"])
            == f"arn:aws:sagemaker:{env.region}:{env.account}:endpoint/{stack.endpoint_name}"
        )
        assert policy["Roles"] == [arn.rsplit("/", 1)[1] for arn in env.endpoint.invokers]
    _, dev = _serving(environments_synth, "dev")
    assert not _of_type(dev, "AWS::IAM::ManagedPolicy")  # no invokers configured: nobody


def test_grant_invoke_gives_one_role_the_invoke_actions_on_this_endpoint_only():
    from aws_cdk import App, Stack
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

    from constructs.served_model import ServedModel
    from constructs.serverless_endpoint import ServerlessEndpoint

    stack = Stack(App(), "Unit", env={"account": "111111111111", "region": "eu-west-1"})
    role = iam.Role(stack, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    model = ServedModel(
        stack,
        "Model",
        role=role,
        model_package_arn="arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/1",
        network_isolation=False,
    )
    endpoint = ServerlessEndpoint(
        stack, "Endpoint", endpoint_name="g", model=model, memory_mb=1024, max_concurrency=1
    )
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    endpoint.grant_invoke(caller)
    template = Template.from_stack(stack).to_json()
    (statement,) = _policy_of(
        template, next(k for k in _of_type(template, "AWS::IAM::Role") if k.startswith("Caller"))
    )
    assert statement["Action"] == ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync"]
    assert _resolve(statement["Resource"]) == "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/g"
    with pytest.raises(ValueError, match="no VPC config and no network isolation"):
        isolated = ServedModel(
            stack,
            "Isolated",
            role=role,
            model_package_arn="arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/2",
        )
        ServerlessEndpoint(
            stack, "Bad", endpoint_name="g2", model=isolated, memory_mb=1024, max_concurrency=1
        )


# ---- helpers on policies ----------------------------------------------------------------------
def _policy_of(template, role_id):
    (policy,) = [
        p
        for p in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _execution_policy(template):
    roles = _of_type(template, "AWS::IAM::Role")
    role_id = next(k for k in roles if k.startswith("ExecutionRole"))
    return _policy_of(template, role_id)


def _s3_resources(statements, action):
    found = []
    for s in statements:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        if action in actions:
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            found += [r for r in (_resolve(x) for x in resources) if "/" in r]
    return found


def _one_alarm_topic(template, name):
    (item,) = [
        (k, t)
        for k, t in _of_type(template, "AWS::SNS::Topic").items()
        if t["Properties"]["TopicName"] == f"{name}-serving-alarms"
    ]
    return item
