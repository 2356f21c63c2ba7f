"""The Tune step: a CreateHyperParameterTuningJob request (see tuning.py) as a pipeline step."""

from __future__ import annotations

from typing import Any

from sagemaker.core.workflow.properties import Properties
from sagemaker.mlops.workflow.steps import CacheConfig, Step, StepTypeEnum


class HyperparameterTuningStep(Step):
    def __init__(self, name: str, *, request: dict[str, Any], description: str | None = None,
                 cache_config: CacheConfig | None = None, retry_policies: list | None = None):
        super().__init__(name, None, description, StepTypeEnum.TUNING, None)
        self._request = request
        self.cache_config = cache_config
        self.retry_policies = retry_policies or []
        self._properties = Properties(
            step_name=name, step=self, shape_name="DescribeHyperParameterTuningJobResponse")

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
