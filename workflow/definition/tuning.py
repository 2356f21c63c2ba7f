"""The tuning request, built from the Train step's own request.

The SDK's TuningStep wants a HyperparameterTuner wrapped around an estimator; our training
request already exists (the Train step's), so the tuning job's TrainingJobDefinition is that
request with the tuned hyperparameters moved into ranges.  One training set-up, two ways to run it.
"""

from __future__ import annotations

from typing import Any

from pipeline_steps.train import objective
from pipeline_steps.train.hyperparameters import objective_type, tuning_ranges

# Fields of a CreateTrainingJob request that a tuning job's TrainingJobDefinition also takes.
_SHARED_FIELDS = (
    "RoleArn",
    "InputDataConfig",
    "VpcConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "Environment",
)

# What is searched, with SageMaker's range types (declared with each hyperparameter); everything
# else stays static.
PARAMETER_RANGES = tuning_ranges()


def tuned_names() -> set[str]:
    return {r["Name"] for ranges in PARAMETER_RANGES.values() for r in ranges}


def tuning_request(
    training_request: dict[str, Any], *, eval_metric: str, max_jobs: int, max_parallel: int
) -> dict[str, Any]:
    definition = {k: training_request[k] for k in _SHARED_FIELDS if k in training_request}
    definition["StaticHyperParameters"] = {
        k: v for k, v in training_request.get("HyperParameters", {}).items() if k not in tuned_names()
    }
    definition["AlgorithmSpecification"] = {
        **training_request["AlgorithmSpecification"],
        "MetricDefinitions": [
            {"Name": objective.metric_name(eval_metric), "Regex": objective.regex(eval_metric)}
        ],
    }
    return {
        "HyperParameterTuningJobConfig": {
            # Random search: what SageMaker runs is what the local runner runs.
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {
                "Type": objective_type(eval_metric),
                "MetricName": objective.metric_name(eval_metric),
            },
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": max_parallel},
            "ParameterRanges": PARAMETER_RANGES,
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": definition,
    }
