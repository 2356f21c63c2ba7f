"""What the pipeline definition is built from, besides the feature spec.

Values an environment only knows at deploy time (role, buckets, key, images, subnets) are
`${Name}` placeholders: CDK fills them with `Fn::Sub`, the local runner with local values.
Everything else is a plain value taken from the environment's config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Placeholder names, shared by CDK (Fn::Sub variables) and the local runner.
EXECUTION_ROLE = "ExecutionRoleArn"
ARTIFACT_BUCKET = "ArtifactBucket"
RAW_BUCKET = "RawBucket"
KMS_KEY = "KmsKeyArn"
FEATURE_SPEC_URI = "FeatureSpecUri"
SECURITY_GROUP = "SecurityGroupId"
IMAGE_PLACEHOLDERS = {
    "preprocess": "PreprocessImageUri",
    "train": "TrainImageUri",
    "evaluate": "EvaluateImageUri",
    "serve": "ServeImageUri",
    "ingest": "IngestImageUri",
}


def placeholder(name: str) -> str:
    return "${" + name + "}"


def subnet_placeholder(index: int) -> str:
    return f"Subnet{index}"


DEFAULT_HYPERPARAMETERS = {
    "num_round": "400",
    "max_depth": "5",
    "eta": "0.08",
    "subsample": "0.85",
    "colsample_bytree": "0.8",
    "min_child_weight": "5",
    "reg_lambda": "1.0",
    "early_stopping_rounds": "30",
    # 1 keeps probabilities calibrated (they price loans); imbalance is handled by the decision
    # threshold training picks on validation.  "auto" (negatives / positives) reweights instead.
    "scale_pos_weight": "1",
    "eval_metric": "auc",
    "seed": "7",
}


@dataclass(frozen=True)
class PipelineSettings:
    pipeline_name: str = "mlops-dev-model-build"
    model_package_group: str = "mlops-dev-merchant-credit"
    region: str = "eu-west-1"
    processing_instance_type: str = "ml.m5.xlarge"
    processing_instance_count: int = 1
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    evaluation_instance_type: str = "ml.m5.large"
    serving_instance_types: tuple[str, ...] = ("ml.m5.large",)
    auc_floor: float = 0.70
    decision_threshold: str = "model"
    model_approval_status: str = "PendingManualApproval"
    use_spot_training: bool = False
    # 0: train once with the hyperparameters below; N > 0: a tuning job of N training jobs.
    tuning_max_jobs: int = 0
    tuning_max_parallel: int = 1
    max_runtime_seconds: int = 3600
    hyperparameters: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_HYPERPARAMETERS))
    # Number of private subnets the jobs run in; 0 runs them outside a VPC (local runs).
    subnet_count: int = 2
    data_prefix: str = "merchant-credit"
    # Feature groups are `<prefix>-<spec group>` (stacks/feature_store_stack.py names them).
    feature_group_prefix: str = "mlops-dev"

    def __post_init__(self) -> None:
        if self.model_approval_status not in ("Approved", "PendingManualApproval"):
            raise ValueError(
                f"pipeline settings: model_approval_status={self.model_approval_status!r}: "
                "expected 'Approved' or 'PendingManualApproval'"
            )
        if not 0 < self.auc_floor < 1:
            raise ValueError(f"pipeline settings: auc_floor={self.auc_floor}: expected a value in (0, 1)")
        for name in ("processing_instance_count", "training_instance_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"pipeline settings: {name}={getattr(self, name)}: expected >= 1")
