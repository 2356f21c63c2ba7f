"""The Tune step (tuning on in the environment's config), run by the local runner."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

from pipeline_steps.common.feature_spec import load_spec
from workflow.datasets import merchant_credit
from workflow.definition.build import build_definition
from workflow.definition.environment import settings_for_environment
from workflow.definition.schema_check import validate_definition
from workflow.definition.tuning import PARAMETER_RANGES
from workflow.local_runner.local_values import local_values
from workflow.local_runner.runner import LocalPipelineRunner, fill_placeholders
from workflow.local_runner.storage import LocalS3
from workflow.local_runner.tuning import sample

SPEC = Path(__file__).resolve().parents[1] / "workflow" / "specs" / "merchant_credit.yaml"


def test_sampling_stays_inside_the_ranges_and_is_repeatable():
    draws = [sample(PARAMETER_RANGES, random.Random(5)) for _ in range(2)]
    assert draws[0] == draws[1]
    many = [sample(PARAMETER_RANGES, random.Random(seed)) for seed in range(200)]
    for ranges in PARAMETER_RANGES.values():
        for r in ranges:
            values = [float(d[r["Name"]]) for d in many]
            assert float(r["MinValue"]) <= min(values) and max(values) <= float(r["MaxValue"])
            assert len(set(values)) > 5


def test_tuning_picks_the_best_trial_and_feeds_its_model_downstream(tmp_path):
    settings = dataclasses.replace(settings_for_environment("dev"), tuning_max_jobs=2, tuning_max_parallel=2)
    text = build_definition(load_spec(SPEC), settings)
    definition = json.loads(text)
    validate_definition(definition)
    assert [s["Name"] for s in definition["Steps"]] == [
        "Preprocess",
        "IngestFeatures",
        "Tune",
        "Evaluate",
        "CheckModelQuality",
        "ServingModel",
        "ScoreTestSplit",
    ]

    s3 = LocalS3(tmp_path)
    merchant_credit.make(str(s3.path("s3://local-raw/credit")), 3000, seed=5)
    runner = LocalPipelineRunner(
        fill_placeholders(text, local_values(s3, SPEC)),
        tmp_path,
        pipeline_name=settings.pipeline_name,
        echo=lambda line: None,
    )
    result = runner.run(
        {
            "EntitiesUri": "s3://local-raw/credit/entities/",
            "HistoryUri": "s3://local-raw/credit/history/",
            "AucFloor": "0.5",
        }
    )
    assert result.steps["Tune"].status == "Succeeded" and result.steps["Evaluate"].status == "Succeeded"
    trials = json.loads((Path(result.steps["Tune"].job_dir) / "tuning_results.json").read_text())["trials"]
    assert len(trials) == 2 and all(t["Status"] == "Completed" for t in trials)
    assert len({json.dumps(t["TunedHyperParameters"], sort_keys=True) for t in trials}) == 2
    best = max(trials, key=lambda t: t["ObjectiveValue"])
    assert result.property("Steps.Tune.BestTrainingJob.TrainingJobName") == best["TrainingJobName"]
    # Evaluate scored the best trial's model.
    evaluate = next(s for s in runner.definition["Steps"] if s["Name"] == "Evaluate")
    model_input = evaluate["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert "Steps.Tune.BestTrainingJob.TrainingJobName" in json.dumps(model_input)
    evaluated = (
        Path(result.steps["Evaluate"].job_dir) / "algo-1" / "opt" / "ml" / "processing" / "input" / "model"
    )
    archive = s3.path(
        f"s3://local-artifacts/{settings.pipeline_name}/{result.execution_id}/train/model/"
        f"{best['TrainingJobName']}/output/model.tar.gz"
    )
    assert (evaluated / "model.tar.gz").read_bytes() == archive.read_bytes()
