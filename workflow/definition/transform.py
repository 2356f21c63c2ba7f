"""Batch scoring of the test split with the registered model: a CreateModel step from the
registered model package (its serving container and model data), then a Transform step (the
SDK's Transformer) that scores every test file.

    RegisterModel -> ServingModel (CreateModel) -> ScoreTestSplit (batch transform)

The test split is Parquet, so each file goes to the server whole (`SplitType None`, content
type `application/x-parquet`; the server ignores the label and recomputes derived ratios) and
the answers are joined line by line (`AssembleWith Line`, `Accept text/csv`: one
`probability,label,model_version,inference_id` line per row, in the file's row order).
"""

from __future__ import annotations

from typing import Any

from workflow.definition import placeholders as s
from workflow.definition.placeholders import placeholder
from workflow.definition.settings import PipelineSettings

STEP_MODEL = "ServingModel"
STEP_TRANSFORM = "ScoreTestSplit"
# SageMaker's largest batch-transform payload; a test-split file is sent whole.
MAX_PAYLOAD_MB = 100


def transform_steps(builder: Any, settings: PipelineSettings, *, register: Any, test_uri: Any) -> list[Any]:
    """[CreateModel step, Transform step] for the version the RegisterModel step registered."""
    from sagemaker.core.transformer import Transformer
    from sagemaker.mlops.workflow.steps import StepTypeEnum, TransformStep

    from workflow.definition.request_step import RequestStep
    from workflow.definition.sdk import SENTINEL_ROLE_ARN

    subnets = [placeholder(s.subnet_placeholder(i)) for i in range(settings.subnet_count)]
    request: dict[str, Any] = {
        "PrimaryContainer": {
            "ModelPackageName": register.properties.ModelPackageArn,
            "Environment": {"SERVE_MAX_PAYLOAD_MB": str(MAX_PAYLOAD_MB), "SERVE_ACCESS_LOG": "0"},
        },
        "ExecutionRoleArn": SENTINEL_ROLE_ARN,
        "EnableNetworkIsolation": True,
    }
    if subnets:
        request["VpcConfig"] = {"SecurityGroupIds": [placeholder(s.SECURITY_GROUP)], "Subnets": subnets}
    model = RequestStep(
        STEP_MODEL,
        StepTypeEnum.CREATE_MODEL,
        request=request,
        description="The registered model version as a SageMaker model, for batch transform.",
    )
    transformer = Transformer(
        model_name=model.properties.ModelName,
        instance_count=1,
        instance_type=settings.serving_instance_types[0],
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=builder.output_uri("transform", "test-scores"),
        accept="text/csv",
        max_payload=MAX_PAYLOAD_MB,
        max_concurrent_transforms=1,
        output_kms_key=placeholder(s.KMS_KEY),
        volume_kms_key=placeholder(s.KMS_KEY),
        sagemaker_session=builder.session,
    )
    transform = TransformStep(
        name=STEP_TRANSFORM,
        description="Score the test split with the model through its serving container.",
        step_args=transformer.transform(
            data=test_uri, content_type="application/x-parquet", split_type="None", wait=False, logs=False
        ),
        # cached like the jobs; the local runner keys the model by its content, so the same
        # trained model registered again is not re-scored
        cache_config=builder.cache(),
        retry_policies=builder.retries(),
    )
    return [model, transform]
