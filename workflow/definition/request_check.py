"""Checks a step's resolved request against botocore's SageMaker service model.

botocore's model is the API's own description, newer than any schema we could keep, so a
local run refuses a request that SageMaker would refuse (a wrong field name, a string where a
number goes, a missing required field) instead of finding out in the cloud.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pipeline_steps.common.contract import ConfigError

# step type -> (API operation, the field the pipeline service fills in itself)
OPERATIONS = {
    "Processing": ("CreateProcessingJob", {"ProcessingJobName": "local-check"}),
    "Training": ("CreateTrainingJob", {"TrainingJobName": "local-check"}),
    "Tuning": ("CreateHyperParameterTuningJob", {"HyperParameterTuningJobName": "local-check"}),
    "RegisterModel": ("CreateModelPackage", {}),
    "Model": ("CreateModel", {"ModelName": "local-check"}),
    "Transform": ("CreateTransformJob", {"TransformJobName": "local-check"}),
}


class RequestShapeError(ConfigError):
    pass


@lru_cache(maxsize=1)
def _service_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def check_request(step_type: str, request: dict[str, Any]) -> None:
    """Raises RequestShapeError naming every problem botocore finds; other step types pass."""
    if step_type not in OPERATIONS:
        return
    from botocore.validate import ParamValidator

    operation, filled_by_service = OPERATIONS[step_type]
    shape = _service_model().operation_model(operation).input_shape
    report = ParamValidator().validate({**filled_by_service, **request}, shape)
    if report.has_errors():
        raise RequestShapeError(
            f"{operation} request is not valid for SageMaker:\n{report.generate_report()}"
        )
