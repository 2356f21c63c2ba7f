"""A hyperparameter tuning job, locally: random search over the request's ranges.

Trials run one after another (this machine has two cores; MaxParallelTrainingJobs is a cloud
setting), each as a full training job under its own name.  The objective comes from each
trial's log through the request's metric regex, as SageMaker reads it.  A failed trial is
recorded and the search goes on; the job fails only when every trial failed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from pathlib import Path
from typing import Any

from pipeline_steps.common.atomic import write_json
from workflow.local_runner.jobs import StepFailed
from workflow.local_runner.storage import LocalS3
from workflow.local_runner.training import run_training


def sample(ranges: dict[str, list[dict[str, Any]]], rng: random.Random) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for spec in ranges.get("ContinuousParameterRanges", []):
        chosen[spec["Name"]] = f"{_draw(spec, rng):.6g}"
    for spec in ranges.get("IntegerParameterRanges", []):
        chosen[spec["Name"]] = str(int(round(_draw(spec, rng))))
    for spec in ranges.get("CategoricalParameterRanges", []):
        chosen[spec["Name"]] = rng.choice(spec["Values"])
    return chosen


def _draw(spec: dict[str, Any], rng: random.Random) -> float:
    low, high = float(spec["MinValue"]), float(spec["MaxValue"])
    scaling = spec.get("ScalingType", "Auto")
    if scaling in ("Auto", "Linear"):
        return rng.uniform(low, high)
    if scaling == "Logarithmic":
        if low <= 0:
            raise StepFailed("?", f"{spec['Name']}: Logarithmic scaling needs MinValue > 0, got {low}")
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    raise StepFailed("?", f"{spec['Name']}: ScalingType {scaling!r} is not supported locally")


def objective_value(log: Path, regex: str) -> float | None:
    matches = re.findall(regex, log.read_text(errors="replace")) if log.exists() else []
    return float(matches[-1]) if matches else None


def run_tuning(
    step: str, args: dict[str, Any], job_dir: Path, s3: LocalS3, tuning_job_name: str
) -> dict[str, Any]:
    config = args["HyperParameterTuningJobConfig"]
    definition = args["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    algorithm = dict(definition["AlgorithmSpecification"])
    metrics = {m["Name"]: m["Regex"] for m in algorithm.pop("MetricDefinitions", [])}
    if objective["MetricName"] not in metrics:
        raise StepFailed(step, f"objective metric {objective['MetricName']!r} has no MetricDefinitions regex")
    # Same request -> same trials: the seed is the request itself.
    rng = random.Random(hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest())
    base = {
        k: v for k, v in definition.items() if k not in ("StaticHyperParameters", "AlgorithmSpecification")
    }
    trials: list[dict[str, Any]] = []
    for index in range(int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"])):
        tuned = sample(config.get("ParameterRanges", {}), rng)
        name = f"{tuning_job_name}-{index + 1:03d}"
        request = {
            **base,
            "AlgorithmSpecification": algorithm,
            "HyperParameters": {**definition.get("StaticHyperParameters", {}), **tuned},
        }
        trial: dict[str, Any] = {"TrainingJobName": name, "TunedHyperParameters": tuned}
        try:
            run_training(step, request, job_dir / name, s3, name)
            trial["ObjectiveValue"] = objective_value(
                job_dir / name / "logs" / "algo-1.log", metrics[objective["MetricName"]]
            )
            trial["Status"] = "Completed" if trial["ObjectiveValue"] is not None else "Failed"
            if trial["ObjectiveValue"] is None:
                trial["FailureReason"] = f"no {objective['MetricName']} in the log"
        except StepFailed as err:
            trial.update(Status="Failed", FailureReason=err.message)
        trials.append(trial)
    write_json(job_dir / "tuning_results.json", {"objective": objective, "trials": trials})
    done = [t for t in trials if t["Status"] == "Completed"]
    if not done:
        raise StepFailed(
            step, f"every training job of the tuning job failed; first: {trials[0].get('FailureReason')}"
        )
    pick = max if objective["Type"] == "Maximize" else min
    best = pick(done, key=lambda t: t["ObjectiveValue"])
    return {
        "HyperParameterTuningJobName": tuning_job_name,
        "HyperParameterTuningJobStatus": "Completed",
        "BestTrainingJob.TrainingJobName": best["TrainingJobName"],
        "BestTrainingJob.TunedHyperParameters": best["TunedHyperParameters"],
        "BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.MetricName": objective["MetricName"],
        "BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value": best["ObjectiveValue"],
        "TrainingJobStatusCounters.Completed": len(done),
        "TrainingJobStatusCounters.NonRetryableError": len(trials) - len(done),
    }
