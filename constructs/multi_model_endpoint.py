"""A multi-model SageMaker endpoint: every model under one S3 prefix, on one endpoint."""

from __future__ import annotations

from aws_cdk import aws_kms as kms

from constructs import Construct
from constructs.realtime_endpoint import RealtimeEndpoint
from constructs.served_model import ServedModel


class MultiModelEndpoint(RealtimeEndpoint):
    """A real-time endpoint whose model is a multi-model container (`ServedModel` with
    `image_uri` and `model_data_prefix`): callers pick a model per request with
    `TargetModel=<key under the prefix>`; SageMaker loads and unloads them on demand.  Adding a
    model is uploading its `model.tar.gz` under the prefix: no deployment.  Guarded rollouts
    apply to the container, not to the models under the prefix.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        model: ServedModel,
        instance_type: str,
        instance_count: int,
        key: kms.IKey,
        capture_destination: str | None = None,
        capture_sampling_percentage: int = 100,
    ) -> None:
        if (
            model.resource.primary_container is None
            or getattr(model.resource.primary_container, "mode", None) != "MultiModel"
        ):
            raise ValueError(
                "MultiModelEndpoint: the model must be a multi-model container (ServedModel image_uri=...)"
            )
        super().__init__(
            scope,
            id,
            endpoint_name=endpoint_name,
            model=model,
            instance_type=instance_type,
            instance_count=instance_count,
            key=key,
            capture_destination=capture_destination,
            capture_sampling_percentage=capture_sampling_percentage,
        )
