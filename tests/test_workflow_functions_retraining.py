"""The retraining trigger Lambda against moto (DynamoDB, SageMaker); botocore's client checks
every request against the service model before moto sees it (parameter validation is on)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from workflow.functions.retraining_trigger import handler as trigger

REGION = "eu-west-1"
PIPELINE = "mlops-dev-merchant-credit-build"
ROLE = "arn:aws:iam::123456789012:role/pipeline"
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)

SCHEDULE = {"reason": "schedule"}
NEW_DATA = {
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {"bucket": {"name": "mlops-dev-raw"}, "object": {"key": "merchant-credit/entities/part-9.csv"}},
}
ALARM = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "detail": {"alarmName": "mlops-dev-merchant-credit-drift-share", "state": {"value": "ALARM"}},
}
ALARM_OK = {**ALARM, "detail": {**ALARM["detail"], "state": {"value": "OK"}}}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name=REGION)
        table = ddb.create_table(
            TableName="triggers",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        definition = {
            "Version": "2020-12-01",
            "Parameters": [{"Name": "TriggerReason", "Type": "String", "DefaultValue": "manual"}],
            "Steps": [],
        }
        sagemaker.create_pipeline(
            PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition), RoleArn=ROLE
        )
        monkeypatch.setenv("TRIGGERS_TABLE", "triggers")
        monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
        monkeypatch.setenv("COOLDOWN_HOURS", "6")
        yield table, sagemaker


def store_and_starter(aws):
    table, sagemaker = aws
    return trigger.DynamoStore(table), trigger.PipelineStarter(sagemaker, PIPELINE)


def records(table) -> list[dict]:
    items = table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "trigger"})[
        "Items"
    ]
    return sorted(items, key=lambda i: i["sk"])


def test_reasons_from_each_trigger():
    assert trigger.trigger_reason(SCHEDULE) == "schedule"
    assert (
        trigger.trigger_reason(NEW_DATA) == "new-data: s3://mlops-dev-raw/merchant-credit/entities/part-9.csv"
    )
    assert trigger.trigger_reason(ALARM) == "alarm: mlops-dev-merchant-credit-drift-share"
    assert trigger.trigger_reason(ALARM_OK) == ""
    assert trigger.trigger_reason({"something": "else"}) == "unknown"


def test_storm_starts_one_execution_and_records_every_trigger(aws):
    store, starter = store_and_starter(aws)
    table, sagemaker = aws
    cooldown = timedelta(hours=6)
    outcomes = [
        trigger.handle(event, store, starter, cooldown, NOW + timedelta(minutes=i)).outcome
        for i, event in enumerate((ALARM, NEW_DATA, SCHEDULE))
    ]
    assert outcomes == ["started", "suppressed", "suppressed"]
    executions = sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert len(executions) == 1
    params = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=executions[0]["PipelineExecutionArn"]
    )["PipelineParameters"]
    assert {"Name": "TriggerReason", "Value": "alarm: mlops-dev-merchant-credit-drift-share"} in params
    log = records(table)
    assert [i["outcome"] for i in log] == ["started", "suppressed", "suppressed"]
    assert [i["reason"] for i in log][1].startswith("new-data: ")
    assert "until 2026-11-30T18:00:00" in log[1]["detail"] and log[0]["execution"].startswith("arn:")
    # after the cooldown the next trigger starts again
    later = trigger.handle(SCHEDULE, store, starter, cooldown, NOW + timedelta(hours=6, minutes=1))
    assert later.outcome == "started"
    assert len(sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]) == 2


def test_alarm_back_to_ok_is_recorded_and_ignored(aws):
    store, starter = store_and_starter(aws)
    decision = trigger.handle(ALARM_OK, store, starter, timedelta(hours=6), NOW)
    assert decision.outcome == "ignored"
    assert records(aws[0])[0]["outcome"] == "ignored"


def test_failed_start_releases_the_cooldown(aws, monkeypatch):
    store, _ = store_and_starter(aws)

    class Broken:
        def start(self, reason: str, token: str) -> str:
            raise RuntimeError("throttled")

    with pytest.raises(RuntimeError):
        trigger.handle(SCHEDULE, store, Broken(), timedelta(hours=6), NOW)
    assert records(aws[0])[0]["outcome"] == "failed"
    _, starter = store_and_starter(aws)
    assert trigger.handle(SCHEDULE, store, starter, timedelta(hours=6), NOW).outcome == "started"


def test_lambda_handler_entry_point(aws):
    result = trigger.lambda_handler(ALARM, None)
    assert result["outcome"] == "started" and result["reason"].startswith("alarm: ")


def test_start_request_matches_botocore_model():
    captured = {}

    class Client:
        def start_pipeline_execution(self, **request):
            captured.update(request)
            return {"PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:1:pipeline/p/execution/x"}

    trigger.PipelineStarter(Client(), PIPELINE).start("alarm: " + "x" * 300, "0" * 36)
    import botocore.session

    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("StartPipelineExecution")
        .input_shape
    )
    report = ParamValidator().validate(captured, shape)
    assert not report.has_errors(), report.generate_report()
