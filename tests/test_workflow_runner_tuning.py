"""The Tune step (tuning on in the environment's config), run by the local runner."""

from __future__ import annotations

import json
import random
from pathlib import Path

from workflow.definition.schema_check import validate_definition
from workflow.definition.tuning import PARAMETER_RANGES
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


def test_tuning_picks_the_best_trial_and_feeds_its_model_downstream(tuning_pipeline):
    """The run happens in the background lane (tests/background_jobs.py, `tuning_pipeline`): the
    dev definition with tuning (2 trials, 2 in parallel) on 3,000 generated merchants."""
    text, result = tuning_pipeline["text"], tuning_pipeline["result"]
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

    assert result.steps["Tune"].status == "Succeeded" and result.steps["Evaluate"].status == "Succeeded"
    trials = json.loads((Path(result.steps["Tune"].job_dir) / "tuning_results.json").read_text())["trials"]
    assert len(trials) == 2 and all(t["Status"] == "Completed" for t in trials)
    assert len({json.dumps(t["TunedHyperParameters"], sort_keys=True) for t in trials}) == 2
    best = max(trials, key=lambda t: t["ObjectiveValue"])
    assert result.property("Steps.Tune.BestTrainingJob.TrainingJobName") == best["TrainingJobName"]
    # Evaluate scored the best trial's model.
    evaluate = next(s for s in tuning_pipeline["definition"]["Steps"] if s["Name"] == "Evaluate")
    model_input = evaluate["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert "Steps.Tune.BestTrainingJob.TrainingJobName" in json.dumps(model_input)
    evaluated = (
        Path(result.steps["Evaluate"].job_dir) / "algo-1" / "opt" / "ml" / "processing" / "input" / "model"
    )
    archive = LocalS3(tuning_pipeline["root"]).path(
        f"s3://local-artifacts/{tuning_pipeline['pipeline_name']}/{result.execution_id}/train/model/"
        f"{best['TrainingJobName']}/output/model.tar.gz"
    )
    assert (evaluated / "model.tar.gz").read_bytes() == archive.read_bytes()
