"""A pipeline step whose service request we state ourselves.

The SDK reaches a RegisterModel step through ModelBuilder (which inspects images and model
artifacts at build time) and a Tuning step through a HyperparameterTuner around an estimator.
Our requests are fixed, so these steps carry them directly; the SDK still serialises them,
resolves their pipeline variables and orders them in the DAG.
"""

from __future__ import annotations

from typing import Any

from sagemaker.core.workflow.properties import Properties
from sagemaker.mlops.workflow.steps import CacheConfig, Step, StepTypeEnum

# The Describe* response each step type's properties follow (what `Steps.X.<path>` may name).
PROPERTY_SHAPES = {
    StepTypeEnum.REGISTER_MODEL: "DescribeModelPackageOutput",
    StepTypeEnum.TUNING: "DescribeHyperParameterTuningJobResponse",
    StepTypeEnum.CREATE_MODEL: "DescribeModelOutput",
}


class RequestStep(Step):
    def __init__(
        self,
        name: str,
        step_type: StepTypeEnum,
        *,
        request: dict[str, Any],
        description: str | None = None,
        cache_config: CacheConfig | None = None,
        retry_policies: list | None = None,
    ):
        super().__init__(name, None, description, step_type, None)
        self._request = request
        self.cache_config = cache_config
        self.retry_policies = retry_policies or []
        self._properties = Properties(step_name=name, step=self, shape_name=PROPERTY_SHAPES[step_type])

    @property
    def arguments(self) -> dict[str, Any]:
        return self._request

    @property
    def properties(self):
        return self._properties

    def to_request(self) -> dict[str, Any]:
        request = super().to_request()
        if self.cache_config:
            request.update(self.cache_config.config)
        if self.retry_policies:
            request["RetryPolicies"] = [policy.to_request() for policy in self.retry_policies]
        return request
