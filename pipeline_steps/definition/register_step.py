"""A RegisterModel step whose CreateModelPackage request we write ourselves.

The SDK's own path to a RegisterModel step goes through ModelBuilder, which inspects images
and model artifacts at build time.  Our serving image and request are fixed, so the step
states the request directly; the SDK still serialises it, resolves its pipeline variables
and orders it in the DAG.
"""

from __future__ import annotations

from typing import Any

from sagemaker.core.workflow.properties import Properties
from sagemaker.mlops.workflow.steps import Step, StepTypeEnum


class RegisterModelPackageStep(Step):
    def __init__(self, name: str, *, request: dict[str, Any], description: str | None = None):
        super().__init__(name, None, description, StepTypeEnum.REGISTER_MODEL, None)
        self._request = request
        self._properties = Properties(step_name=name, step=self, shape_name="DescribeModelPackageOutput")

    @property
    def arguments(self) -> dict[str, Any]:
        return self._request

    @property
    def properties(self):
        return self._properties
