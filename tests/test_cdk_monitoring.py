"""The monitoring stack: schedules, the monitor job's launcher and its request, alarms, topic,
dashboard, retraining triggers with their rules, permissions, optional Model Monitor schedules.

Uses the shared synths (tests/conftest.py): `environments_synth` has dev, staging (Model
Monitor on, a per-feature PSI, rate(6 hours)) and prod; cfn-lint and cdk-nag run over them in
test_cdk_cfn_lint.py and test_cdk_nag.py.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

import stacks  # noqa: F401  (first: makes the project's constructs/ importable)
from constructs.model_monitor_schedules import analyzer_image, model_monitor_cron
from constructs.monitoring_jobs import window_hours
from workflow.definition.environment import pipeline_settings


def stage(synth, name: str):
    return synth.app.node.find_child(name.capitalize())


@pytest.fixture(scope="module")
def templates(environments_synth):
    return {
        name: environments_synth.template(stage(environments_synth, name).monitoring)
        for name in ("dev", "staging", "prod")
    }


def resources(template, kind: str) -> dict:
    return template.find_resources(kind)


def env_vars(template, handler: str) -> dict:
    fns = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    ]
    assert len(fns) == 1, handler
    return fns[0]["Properties"]["Environment"]["Variables"]


def test_schedules_come_from_config(environments_synth, templates):
    for name, template in templates.items():
        env = environments_synth.config.environment(name)
        schedules = {
            s["Properties"]["ScheduleExpression"]: s["Properties"]
            for s in resources(template, "AWS::Scheduler::Schedule").values()
        }
        assert set(schedules) == {env.schedules.monitoring, env.schedules.retraining}
        monitor = schedules[env.schedules.monitoring]
        assert json.loads(monitor["Target"]["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
        assert monitor["FlexibleTimeWindow"] == {"Mode": "OFF"} and "KmsKeyArn" in monitor
        assert (
            "DeadLetterConfig" in monitor["Target"]
            and monitor["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 3
        )
        retrain = schedules[env.schedules.retraining]
        assert json.loads(retrain["Target"]["Input"]) == {"reason": f"schedule: {env.schedules.retraining}"}


def test_launcher_runs_the_monitor_over_the_configured_window(environments_synth, templates):
    assert window_hours("rate(1 day)") == 24 and window_hours("rate(6 hours)") == 6
    assert window_hours("rate(1 hour)") == 1 and window_hours("cron(0 3 ? * MON *)") == 24
    for name, template in templates.items():
        config = environments_synth.config
        env = config.environment(name)
        settings = pipeline_settings(config, env)
        variables = env_vars(template, "handler.launch_handler")
        endpoint = settings.model_package_group
        assert variables["ENDPOINT_NAME"] == endpoint == variables["MODEL_PACKAGE_GROUP"]
        assert variables["CAPTURE_PREFIX"] == f"datacapture/{endpoint}/AllTraffic"
        assert variables["GROUND_TRUTH_PREFIX"] == f"ground-truth/{endpoint}"
        assert variables["CAPTURE_BUCKET"] == config.bucket_name(env, "capture")
        assert variables["WINDOW_HOURS"] == str(window_hours(env.schedules.monitoring))
        assert variables["MODEL_PACKAGE_VERSION"] == str(env.model_package_version or "")
        args = json.loads(variables["MONITOR_ARGUMENTS"])
        assert args[args.index("--drift-psi") + 1] == str(env.thresholds.drift_psi)
        assert args[args.index("--drift-share") + 1] == str(env.thresholds.drift_share)
        for feature, psi in env.thresholds.drift_psi_features.items():
            assert f"{feature}={psi}" in args
        assert bool(variables["MODEL_MONITOR_BASELINE"]) == env.monitoring.model_monitor
    assert "tenure_months=0.3" in json.loads(
        env_vars(templates["staging"], "handler.launch_handler")["MONITOR_ARGUMENTS"]
    )


def test_publisher_runs_when_a_monitor_job_completes(templates):
    rules = [r["Properties"] for r in resources(templates["dev"], "AWS::Events::Rule").values()]
    completed = [
        r for r in rules if r["EventPattern"].get("detail-type") == ["SageMaker Processing Job State Change"]
    ]
    assert len(completed) == 1
    assert completed[0]["EventPattern"]["detail"] == {
        "ProcessingJobStatus": ["Completed"],
        "ProcessingJobName": [{"prefix": "mlops-dev-merchant-credit-mon-"}],
    }


def test_alarms_thresholds_and_topic(environments_synth, templates):
    for name, template in templates.items():
        env = environments_synth.config.environment(name)
        alarms = {
            a["Properties"]["MetricName"]: a["Properties"]
            for a in resources(template, "AWS::CloudWatch::Alarm").values()
        }
        assert set(alarms) == {
            "DriftShare",
            "EstimatedAUC",
            "RealizedAUC",
            "DataQualityViolations",
            "Records",
        }
        assert alarms["DriftShare"]["Threshold"] == env.thresholds.drift_share
        assert alarms["DriftShare"]["ComparisonOperator"] == "GreaterThanThreshold"
        for quality in ("EstimatedAUC", "RealizedAUC"):
            assert alarms[quality]["Threshold"] == env.thresholds.auc_floor
            assert alarms[quality]["ComparisonOperator"] == "LessThanThreshold"
        assert alarms["DataQualityViolations"]["Threshold"] == 0
        for alarm in alarms.values():
            assert (
                alarm["Namespace"] == "MLOps/ModelMonitoring" and alarm["TreatMissingData"] == "notBreaching"
            )
            assert alarm["AlarmActions"] and alarm["OKActions"]
            assert alarm["Period"] == min(window_hours(env.schedules.monitoring), 24) * 3600
    topic = list(resources(templates["dev"], "AWS::SNS::Topic").values())[0]["Properties"]
    assert "KmsMasterKeyId" in topic
    templates["dev"].has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_data_key_lets_cloudwatch_publish_to_the_encrypted_topic(environments_synth):
    data = environments_synth.template(stage(environments_synth, "dev").data)
    data.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "CloudWatchAlarmsMlopsDevMerchantCreditMonitoring",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_dashboard_shows_drift_quality_and_endpoint_health(templates):
    dashboard = list(resources(templates["dev"], "AWS::CloudWatch::Dashboard").values())[0]["Properties"]
    body = json.dumps(dashboard["DashboardBody"])
    for needle in (
        "DriftShare",
        "EstimatedAUC",
        "RealizedAUC",
        "DataQualityViolations",
        "AWS/SageMaker",
        "ModelLatency",
        "AllTraffic",
    ):
        assert needle in body, needle


def test_retraining_triggers_rules_cooldown_and_permissions(environments_synth, templates):
    template = templates["prod"]
    env = environments_synth.config.environment("prod")
    settings = pipeline_settings(environments_synth.config, env)
    variables = env_vars(template, "handler.lambda_handler")
    assert variables["PIPELINE_NAME"] == settings.pipeline_name
    assert variables["COOLDOWN_HOURS"] == str(env.monitoring.retraining_cooldown_hours)
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()]
    new_data = [r for r in rules if r["EventPattern"].get("source") == ["aws.s3"]][0]
    assert new_data["EventPattern"]["detail"] == {
        "bucket": {"name": [environments_synth.config.bucket_name(env, "raw")]},
        "object": {"key": [{"prefix": f"{settings.data_prefix.strip('/')}/"}]},
    }
    alarm_rule = [r for r in rules if r["EventPattern"].get("source") == ["aws.cloudwatch"]][0]
    assert alarm_rule["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
    assert len(alarm_rule["EventPattern"]["resources"]) == 3  # drift share, estimated and realized quality
    table = list(resources(template, "AWS::DynamoDB::GlobalTable").values())[0]["Properties"]
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["Replicas"][0]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    start = [s for s in statements if s.get("Sid") == "StartTheModelBuildPipeline"][0]
    assert start["Action"] == "sagemaker:StartPipelineExecution"
    assert (
        start["Resource"] == f"arn:aws:sagemaker:{env.region}:{env.account}:pipeline/{settings.pipeline_name}"
    )


def test_raw_bucket_sends_events_to_eventbridge(environments_synth):
    data = environments_synth.template(stage(environments_synth, "dev").data)
    data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": Match.string_like_regexp("^mlops-dev-raw-"),
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
        },
    )
    assert not data.find_resources("Custom::S3BucketNotifications")  # no custom-resource Lambda


def test_permissions_are_scoped(templates):
    statements = [
        s
        for p in resources(templates["dev"], "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {s["Sid"]: s for s in statements if "Sid" in s}
    create = by_sid["StartMonitorJobsInTheVpcOnly"]
    assert create["Condition"]["Bool"] == {
        "sagemaker:NetworkIsolation": "true",
        "sagemaker:InterContainerTrafficEncryption": "true",
    }
    assert create["Condition"]["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
    assert create["Condition"]["Null"] == {"sagemaker:InstanceTypes": "false"}
    key = create["Condition"]["ArnEquals"]["sagemaker:VolumeKmsKey"]
    assert create["Condition"]["ArnEquals"]["sagemaker:OutputKmsKey"] == key
    assert by_sid["MonitorJobsEncryptWithTheDataKey"]["Resource"] == key
    assert (
        create["Resource"]
        == "arn:aws:sagemaker:eu-west-1:111111111111:processing-job/mlops-dev-merchant-credit-mon-*"
    )
    assert by_sid["PassTheJobRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert by_sid["PutMonitoringMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "MLOps/ModelMonitoring"}
    }
    for s in statements:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        assert not {"*", "s3:*", "sagemaker:*", "iam:*", "kms:*"} & set(actions), s
    for fn in resources(templates["dev"], "AWS::Lambda::Function").values():
        p = fn["Properties"]
        assert p["Runtime"] == "python3.14" and "VpcConfig" in p and "KmsKeyArn" in p
        assert "DeadLetterConfig" in p and "ManagedPolicyArns" not in json.dumps(templates["dev"].to_json())


def test_model_monitor_schedules_only_where_configured(templates):
    assert not resources(templates["dev"], "AWS::SageMaker::MonitoringSchedule")
    schedules = resources(templates["staging"], "AWS::SageMaker::MonitoringSchedule")
    kinds = sorted(s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] for s in schedules.values())
    assert kinds == ["DataQuality", "ModelQuality"]
    for s in schedules.values():
        assert (
            s["Properties"]["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
            == "cron(0 0 ? * * *)"
        )
    data_quality = list(resources(templates["staging"], "AWS::SageMaker::DataQualityJobDefinition").values())[
        0
    ]
    baseline = data_quality["Properties"]["DataQualityBaselineConfig"]
    launcher = env_vars(templates["staging"], "handler.launch_handler")
    # the same baseline files: where the launcher copies the serving version's baseline
    assert baseline["StatisticsResource"]["S3Uri"] == f"{launcher['MODEL_MONITOR_BASELINE']}/statistics.json"
    assert (
        baseline["ConstraintsResource"]["S3Uri"] == f"{launcher['MODEL_MONITOR_BASELINE']}/constraints.json"
    )
    assert data_quality["Properties"]["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert analyzer_image("eu-central-1").endswith(
        ".dkr.ecr.eu-central-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )
    assert model_monitor_cron("rate(1 hour)") == "cron(0 * ? * * *)"


def test_private_labeling_workteam_only_where_configured(templates):
    assert not resources(templates["dev"], "AWS::SageMaker::Workteam")
    staging = templates["staging"]
    team = list(resources(staging, "AWS::SageMaker::Workteam").values())[0]["Properties"]
    assert team["WorkteamName"] == "mlops-staging-reviewers"
    member = team["MemberDefinitions"][0]["CognitoMemberDefinition"]
    assert set(member) == {"CognitoClientId", "CognitoUserGroup", "CognitoUserPool"}
    assert "NotificationTopicArn" in team["NotificationConfiguration"]
    pool = list(resources(staging, "AWS::Cognito::UserPool").values())[0]["Properties"]
    assert (
        pool["MfaConfiguration"] == "ON" and pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    )
    assert resources(staging, "AWS::SageMaker::Workforce")


def test_label_intake_validates_labels_as_they_arrive(environments_synth, templates):
    template = templates["dev"]
    fns = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if "label_intake" in f["Properties"]["Handler"]
    ]
    assert len(fns) == 1
    variables = fns[0]["Properties"]["Environment"]["Variables"]
    assert json.loads(variables["POSITIVE_LABELS"]) == ["1"]
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()]
    arrived = [
        r
        for r in rules
        if r["EventPattern"].get("detail", {}).get("object", {}).get("key")
        == [{"prefix": "ground-truth/mlops-dev-merchant-credit/"}]
    ]
    assert len(arrived) == 1
    # the package holds the handler and the one shared module whose rules it applies, nothing else
    key = fns[0]["Properties"]["Code"]["S3Key"].split(".")[0]
    package = environments_synth.outdir / f"asset.{key}"
    files = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    assert files == [
        "pipeline_steps/__init__.py",
        "pipeline_steps/common/__init__.py",
        "pipeline_steps/common/ground_truth.py",
        "workflow/__init__.py",
        "workflow/functions/label_intake/handler.py",
    ]
    data = environments_synth.template(stage(environments_synth, "dev").data)
    data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": Match.string_like_regexp("^mlops-dev-capture-"),
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
        },
    )
