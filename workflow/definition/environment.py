"""One environment's config -> the pipeline settings: used by CDK and by `make demo` alike."""

from __future__ import annotations

from pathlib import Path

from config import ProjectConfig, load_config
from config.paths import REPO_ROOT
from config.schema import Environment
from pipeline_steps.common.contract import ConfigError
from workflow.definition.settings import PipelineSettings


def model_package_group_name(project: ProjectConfig, env: Environment, spec_name: str) -> str:
    """`<project>-<env>-<spec name>`: one model package group per use case (feature spec)."""
    return f"{project.prefix(env)}-{spec_name}"


def pipeline_settings(
    project: ProjectConfig, env: Environment, spec_name: str | None = None
) -> PipelineSettings:
    """`spec_name`: the feature spec's `name` (default: the config's spec)."""
    prefix = project.prefix(env)
    if spec_name is None:
        from pipeline_steps.common.feature_spec import load_spec

        spec_name = load_spec(REPO_ROOT / project.feature_spec).name
    subnets = len(env.vpc.subnet_ids) if env.vpc.mode == "import" else env.vpc.max_azs
    return PipelineSettings(
        pipeline_name=f"{prefix}-model-build",
        model_package_group=model_package_group_name(project, env, spec_name),
        region=env.region,
        processing_instance_type=env.instances.processing,
        processing_instance_count=env.instance_counts.processing,
        training_instance_type=env.instances.training,
        training_instance_count=env.instance_counts.training,
        evaluation_instance_type=env.instances.evaluation,
        evaluation_instance_count=env.instance_counts.evaluation,
        serving_instance_types=(env.instances.endpoint,),
        auc_floor=env.thresholds.auc_floor,
        model_approval_status=env.model_approval_status,
        use_spot_training=env.training.spot,
        tuning_max_jobs=env.training.tuning.max_jobs if env.training.tuning.enabled else 0,
        tuning_max_parallel=env.training.tuning.max_parallel,
        subnet_count=subnets,
        feature_group_prefix=prefix,
        preprocess_engine=env.preprocess.engine,
    )


def settings_for_environment(
    name: str, config_path: str | Path | None = None, spec_name: str | None = None
) -> PipelineSettings:
    project = load_config(config_path)
    try:
        env = project.environment(name)
    except KeyError:
        raise ConfigError(
            f"--environment {name!r}: not in the config; expected one of {project.environment_names}"
        ) from None
    return pipeline_settings(project, env, spec_name)
