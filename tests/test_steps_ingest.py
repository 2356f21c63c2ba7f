"""Feature Store ingestion: BatchWriteRecord through botocore's Stubber (request shapes checked
against the service model), the local offline store, and the point-in-time read for training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from pipeline_steps.common.feature_records import to_put_records
from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.common.offline_store import point_in_time, read_group, write_group
from pipeline_steps.ingest.__main__ import ingest
from pipeline_steps.ingest.online import IngestError
from pipeline_steps.ingest.online import write_group as write_online
from pipeline_steps.preprocess.run import Config, run
from workflow.datasets import merchant_credit as mc
from workflow.definition.build import STEP_INGEST, STEP_PREPROCESS
from workflow.definition.cached import definition_text
from workflow.definition.environment import settings_for_environment

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "workflow" / "specs" / "merchant_credit.yaml"
SPEC = load_spec(SPEC_PATH)
GROUP = "mlops-dev-loan-application"


def _client():
    return boto3.client(
        "sagemaker-featurestore-runtime",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _records(n: int) -> list[list[dict[str, str]]]:
    frame = pd.DataFrame(
        {
            "application_id": [f"A{i}" for i in range(n)],
            "application_date": ["2024-01-01T00:00:00Z"] * n,
            "requested_amount": [1000.0 + i for i in range(n)],
            "request_to_revenue": [None if i == 0 else 0.5 for i in range(n)],
        }
    )
    return list(to_put_records(frame))


# ---- online: BatchWriteRecord, retries, idempotency ------------------------------------------
def test_batches_of_25_skip_unchanged_records_and_retry_unprocessed():
    records = _records(30)
    client = _client()
    sleeps: list[float] = []
    with Stubber(client) as stub:
        # Read back first: A0 is held unchanged, A1 is held with another value.
        changed = [dict(f) for f in records[1]]
        changed[2]["ValueAsString"] = "999.0"
        stub.add_response(
            "batch_get_record",
            {
                "Records": [
                    {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "A0", "Record": records[0]},
                    {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "A1", "Record": changed},
                ],
                "Errors": [],
                "UnprocessedIdentifiers": [],
            },
            {
                "Identifiers": [
                    {
                        "FeatureGroupName": GROUP,
                        "RecordIdentifiersValueAsString": [f"A{i}" for i in range(30)],
                    }
                ]
            },
        )
        first = [{"FeatureGroupName": GROUP, "Record": r} for r in records[1:26]]
        # One entry throttled, one unprocessed: both are sent again, alone.
        stub.add_response(
            "batch_write_record",
            {
                "Errors": [
                    {"Entry": first[3], "ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
                ],
                "UnprocessedEntries": [first[7]],
            },
            {"Entries": first},
        )
        stub.add_response(
            "batch_write_record", {"Errors": [], "UnprocessedEntries": []}, {"Entries": [first[7], first[3]]}
        )
        rest = [{"FeatureGroupName": GROUP, "Record": r} for r in records[26:]]
        stub.add_response("batch_write_record", {"Errors": [], "UnprocessedEntries": []}, {"Entries": rest})
        result = write_online(client, GROUP, records, id_name="application_id", sleep=sleeps.append)
        stub.assert_no_pending_responses()
    assert result.as_dict() == {
        "feature_group_name": GROUP,
        "records": 30,
        "written": 29,
        "unchanged": 1,
        "retries": 1,
        "failed": 0,
    }
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.2
    # A missing value is left out of the record, as Feature Store expects.
    assert {f["FeatureName"] for f in records[0]} == {
        "application_id",
        "application_date",
        "requested_amount",
    }


def test_throttled_calls_back_off_and_hard_errors_name_the_group():
    records = _records(2)
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("batch_get_record", "ThrottlingException", "slow", 400)
        stub.add_response("batch_get_record", {"Records": [], "Errors": [], "UnprocessedIdentifiers": []})
        entries = [{"FeatureGroupName": GROUP, "Record": r} for r in records]
        stub.add_response(
            "batch_write_record",
            {
                "Errors": [{"Entry": entries[1], "ErrorCode": "ValidationError", "ErrorMessage": "bad type"}],
                "UnprocessedEntries": [],
            },
            {"Entries": entries},
        )
        with pytest.raises(IngestError) as err:
            write_online(client, GROUP, records, id_name="application_id", sleep=lambda s: None)
    assert str(err.value) == (
        f"feature group {GROUP}: 1 of 2 records not written (1 written, 0 unchanged); "
        "first: A1: ValidationError bad type"
    )


# ---- the local offline store and the point-in-time read --------------------------------------
@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fs")
    mc.make(str(root / "in"), 1500, seed=5)
    run(
        Config(
            spec=SPEC_PATH,
            entities=root / "in" / "entities",
            history=root / "in" / "history",
            output=root / "out",
        )
    )
    return root


def _ingest(root: Path) -> dict:
    args = argparse.Namespace(
        records=root / "out" / "feature_store",
        feature_spec=SPEC_PATH,
        feature_group_prefix="mlops-dev",
        offline_store=root / "store",
        region=None,
    )
    return ingest(args)


def test_training_set_rebuilt_from_the_offline_store_equals_preprocess(preprocessed):
    first = _ingest(preprocessed)
    again = _ingest(preprocessed)  # a re-run writes nothing twice
    for group in SPEC.feature_groups:
        assert (
            first["feature_groups"][group.name]["written"] == first["feature_groups"][group.name]["records"]
        )
        assert again["feature_groups"][group.name]["written"] == 0
        stored = read_group(preprocessed / "store", f"mlops-dev-{group.name}")
        assert len(stored) == first["feature_groups"][group.name]["records"]
    train = pd.read_parquet(preprocessed / "out" / "train")
    keys = train[[SPEC.entity_id, SPEC.entity_time, SPEC.label]]
    names = {g.name: f"mlops-dev-{g.name}" for g in SPEC.feature_groups}
    rebuilt = point_in_time(preprocessed / "store", SPEC, keys, names)
    pd.testing.assert_frame_equal(rebuilt[list(train.columns)], train)


def test_point_in_time_takes_the_latest_record_at_or_before_the_time(tmp_path):
    spec = SPEC
    group = spec.feature_groups[2]  # loan-application: requested_amount, request_to_revenue

    def records(amount: float, when: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "application_id": ["A1"],
                "application_date": [when],
                "requested_amount": [amount],
                "request_to_revenue": [0.1],
            }
        )

    write_group(tmp_path, group.name, records(100.0, "2024-01-01T00:00:00Z"), spec, write_time="t1")
    write_group(tmp_path, group.name, records(200.0, "2024-03-01T00:00:00Z"), spec, write_time="t2")
    write_group(tmp_path, group.name, records(150.0, "2024-01-01T00:00:00Z"), spec, write_time="t3")  # a fix
    others = [g for g in spec.feature_groups if g.name != group.name]
    narrowed = type(spec)(**{**spec.__dict__, "feature_groups": (group,)})
    asked = pd.DataFrame(
        {"application_id": ["A1", "A1", "A1"], "application_date": ["2023-12-31", "2024-02-01", "2024-03-01"]}
    )
    got = point_in_time(tmp_path, narrowed, asked)
    assert got["requested_amount"].tolist()[1:] == [150.0, 200.0]  # the fix wins its event time
    assert pd.isna(got["requested_amount"].iloc[0])  # nothing known yet: no future leak
    assert others  # the other groups are left out of this narrowed query on purpose


# ---- the definition ---------------------------------------------------------------------------
def test_ingest_step_runs_in_the_vpc_without_isolation_after_preprocess():
    definition = json.loads(definition_text(SPEC, settings_for_environment("prod")))
    steps = {s["Name"]: s for s in definition["Steps"]}
    ingest_step, preprocess = steps[STEP_INGEST], steps[STEP_PREPROCESS]
    network = ingest_step["Arguments"]["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is False
    assert len(network["VpcConfig"]["Subnets"]) >= 2
    assert preprocess["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True
    arguments = ingest_step["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--feature-group-prefix") + 1] == "mlops-prod"
    assert ingest_step["Arguments"]["AppSpecification"]["ImageUri"] == "${IngestImageUri}"
    assert "feature_store" in json.dumps(ingest_step["Arguments"]["ProcessingInputs"])


# ---- the role ---------------------------------------------------------------------------------
def test_role_writes_only_to_the_feature_groups_and_ingest_jobs_stay_in_the_vpc(pipeline_synth, dev_stage):
    template = pipeline_synth.template(dev_stage.model_build).to_json()
    (policy,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s.get("Sid"): s for s in statements}
    # The feature groups' own grants (FeatureGroup.grant_put_records / grant_read_records).
    groups = sorted(
        f"arn:aws:sagemaker:eu-west-1:111111111111:feature-group/mlops-dev-{g.name}"
        for g in SPEC.feature_groups
    )
    on_groups = [s for s in statements if "feature-group/" in json.dumps(s["Resource"])]
    assert on_groups and all(sorted(s["Resource"]) == groups for s in on_groups)
    actions = {
        a for s in on_groups for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    # Only what the step calls (pipeline_steps/ingest/online.py): batched writes and reads.
    assert actions == {"sagemaker:BatchWriteRecord", "sagemaker:BatchGetRecord"}
    create = by_sid["CreateIngestJobsInTheVpcOnly"]
    assert create["Action"] == "sagemaker:CreateProcessingJob"
    assert create["Condition"]["Null"]["sagemaker:VpcSubnets"] == "false"
    assert create["Condition"]["Null"]["sagemaker:VpcSecurityGroupIds"] == "false"
    assert create["Condition"]["ForAllValues:StringEquals"]["sagemaker:VpcSubnets"]
