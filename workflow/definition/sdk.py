"""The SageMaker SDK (v3), set up to build a pipeline definition offline.

Building a definition makes no AWS call, but the SDK still wants a region, a session with a
default bucket and, for training, an execution role that looks like an ARN (it would look a
role name up in IAM).  The sentinel role is swapped for the `${ExecutionRoleArn}` placeholder
once the JSON is built.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SENTINEL_ROLE_ARN = "arn:aws:iam::000000000000:role/pipeline-execution-role-placeholder"
_OFFLINE_BUCKET = "offline-definition-bucket"
# No telemetry, and no SDK defaults from a user's config files: the JSON must depend only on
# our code and inputs.
_SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def offline_session(region: str) -> Any:
    """A PipelineSession that records job requests instead of sending them."""
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    # The SDK would call iam:SimulatePrincipalPolicy on the role; the role is a placeholder.
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    for noisy in ("sagemaker", "sagemaker.config", "botocore"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"sagemaker\..*")

    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    _validate_our_config_once()

    boto_session = boto3.Session(
        region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline"
    )
    return PipelineSession(
        boto_session=boto_session, default_bucket=_OFFLINE_BUCKET, sagemaker_config=_SDK_CONFIG
    )


def _validate_our_config_once() -> None:
    """The SDK re-validates the session config against its large schema on every lookup
    (about 40 per build, 10 s in all).  Ours is a constant: validate it once, then skip it;
    any other config is still validated every time.
    """
    from sagemaker.core.config.config_manager import SageMakerConfig

    original = SageMakerConfig.__dict__["validate_sagemaker_config"].__func__
    if getattr(original, "_offline_definition_patch", False):
        return
    original(_SDK_CONFIG)

    def validate(sagemaker_config=None):
        if sagemaker_config is _SDK_CONFIG:
            return None
        return original(sagemaker_config)

    validate._offline_definition_patch = True  # type: ignore[attr-defined]  # marks the patch: applied once
    SageMakerConfig.validate_sagemaker_config = staticmethod(validate)


_LOADERS: dict[str | None, Any] = {}


@contextmanager
def shared_service_models() -> Iterator[None]:
    """Every botocore session made inside (the SDK makes about five per build, each with its own
    loader) reads botocore's data files through one loader per search path, kept for the
    process: the service models' JSON is parsed once, not once per session (that parsing was
    about 1.1 s of a 1.8 s build).  botocore treats loaded models as read-only, as it does when
    the clients of one session share them."""
    import botocore.session

    original = botocore.session.create_loader

    def create_loader(search_path_string: str | None = None) -> Any:
        if search_path_string not in _LOADERS:
            _LOADERS[search_path_string] = original(search_path_string)
        return _LOADERS[search_path_string]

    botocore.session.create_loader = create_loader
    try:
        yield
    finally:
        botocore.session.create_loader = original
