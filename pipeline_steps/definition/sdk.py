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

SENTINEL_ROLE_ARN = "arn:aws:iam::000000000000:role/pipeline-execution-role-placeholder"
_OFFLINE_BUCKET = "offline-definition-bucket"
# No telemetry, and no SDK defaults from a user's config files: the JSON must depend only on
# our code and inputs.
_SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def offline_session(region: str):
    """A PipelineSession that records job requests instead of sending them."""
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    # The SDK would call iam:SimulatePrincipalPolicy on the role; the role is a placeholder.
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    for noisy in ("sagemaker", "sagemaker.config", "botocore"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"sagemaker\..*")

    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    boto_session = boto3.Session(
        region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline"
    )
    return PipelineSession(
        boto_session=boto_session, default_bucket=_OFFLINE_BUCKET, sagemaker_config=_SDK_CONFIG
    )
