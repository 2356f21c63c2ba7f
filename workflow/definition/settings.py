"""What the pipeline definition is built from, besides the feature spec and the placeholders.

Every value an environment decides comes from its config (`config/schema.py` checks it, once,
when the config is read; `environment.py` maps it here), so none has a default: a field added
to the config cannot be forgotten on the way.  The few fields with defaults are the project's
own choices, the same in every environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline_steps.train.hyperparameters import definition_hyperparameters


@dataclass(frozen=True)
class PipelineSettings:
    pipeline_name: str
    model_package_group: str
    region: str
    processing_instance_type: str
    processing_instance_count: int
    training_instance_type: str
    training_instance_count: int
    evaluation_instance_type: str
    evaluation_instance_count: int
    serving_instance_types: tuple[str, ...]
    auc_floor: float
    model_approval_status: str
    use_spot_training: bool
    # 0: train once with the hyperparameters; N > 0: a tuning job of N training jobs.
    tuning_max_jobs: int
    tuning_max_parallel: int
    # Number of private subnets the jobs run in; 0 runs them outside a VPC (local runs).
    subnet_count: int
    # Feature groups are `<prefix>-<spec group>` (stacks/feature_store_stack.py names them).
    feature_group_prefix: str
    # "embedded" | "spark" (config: preprocess.engine): where the Preprocess step's plan runs.
    preprocess_engine: str
    # "model": the threshold training chose on validation; or a number in (0, 1).
    decision_threshold: str = "model"
    max_runtime_seconds: int = 3600
    hyperparameters: dict[str, str] = field(default_factory=definition_hyperparameters)
    data_prefix: str = "merchant-credit"
