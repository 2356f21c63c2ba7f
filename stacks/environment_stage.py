"""One environment's stacks, as a CDK Stage (deployed by the pipeline or directly)."""

from __future__ import annotations

from aws_cdk import DefaultStackSynthesizer, Stage, Tags
from aws_cdk import Environment as CdkEnvironment

from config import Environment, ProjectConfig
from config.schema import CDK_QUALIFIER
from constructs import Construct
from constructs.vpc_function import FunctionLogs
from pipeline_steps.common.feature_spec import load_spec
from stacks.data_stack import DataStack, log_group_prefix
from stacks.feature_store_stack import FeatureStoreStack
from stacks.model_build_stack import ModelBuildStack
from stacks.monitoring_stack import MonitoringStack
from stacks.network_stack import NetworkStack
from stacks.removal import removal_policy
from stacks.serving_stack import ServingStack


class EnvironmentStage(Stage):
    """Creates every stack of one environment, in its account and region.

    Add a stack by adding one line below; stack names are `<project>-<env>-<concern>`.
    """

    def __init__(self, scope: Construct, id: str, *, config: ProjectConfig, environment: Environment) -> None:
        super().__init__(
            scope, id, env=CdkEnvironment(account=environment.account, region=environment.region)
        )
        env, prefix = environment, config.prefix(environment)
        spec = load_spec(config.feature_spec_path)

        def stack(concern: str) -> dict:
            """Common stack arguments: name `<project>-<env>-<concern>`, the synthesizer and
            termination protection (environments.<env>.protection)."""
            return {
                "stack_name": f"{prefix}-{concern}",
                "synthesizer": _synthesizer(env),
                "termination_protection": env.protection.termination_protection,
            }

        self.data = DataStack(self, "Data", **stack("data"), config=config, environment=env)
        self.network = NetworkStack(
            self, "Network", **stack("network"), config=config, environment=env, log_key=self.data.logs_key
        )
        self.feature_store = FeatureStoreStack(
            self,
            "FeatureStore",
            **stack("feature-store"),
            config=config,
            environment=env,
            spec=spec,
            bucket_name=config.bucket_name(env, "curated"),
            key=self.data.key,
        )
        self.feature_store.add_stack_dependency(self.data)
        network = self.network.network
        self.model_build = ModelBuildStack(
            self,
            "ModelBuild",
            **stack("model-build"),
            config=config,
            environment=env,
            spec=spec,
            raw_bucket_name=config.bucket_name(env, "raw"),
            artifact_bucket_name=config.bucket_name(env, "artifacts"),
            key=self.data.key,
            logs_key=self.data.logs_key,
            vpc=network.vpc,
            subnets=network.vpc.select_subnets(subnet_type=network.subnets.subnet_type).subnets,
            security_group=network.security_group,
            feature_groups=list(self.feature_store.feature_groups.values()),
        )
        for upstream in (self.data, self.network, self.feature_store):
            self.model_build.add_stack_dependency(upstream)
        # What the environment serves: only when its config pins an endpoint and a version.
        self.serving: ServingStack | None = None
        if env.endpoint is not None:
            settings = self.model_build.settings
            self.serving = ServingStack(
                self,
                "Serving",
                **stack("serving"),
                config=config,
                environment=env,
                model_package_group=settings.model_package_group,
                model_build_prefix=settings.pipeline_name,
                key=self.data.key,
                raw_bucket_name=config.bucket_name(env, "raw"),
                artifact_bucket_name=config.bucket_name(env, "artifacts"),
                capture_bucket_name=config.bucket_name(env, "capture"),
                vpc=network.vpc,
                subnets=network.vpc.select_subnets(subnet_type=network.subnets.subnet_type).subnets,
                security_group=network.security_group,
                serve_repository=self.model_build.images["serve"].asset.repository,
            )
            for upstream in (self.data, self.network, self.model_build):
                self.serving.add_stack_dependency(upstream)
        settings = self.model_build.settings
        # The serving stack's endpoint (named after the model package group) when this
        # environment serves; the same name otherwise, so triggers and schedules still deploy.
        endpoint_name = self.serving.endpoint_name if self.serving else settings.model_package_group
        if self.serving is not None and self.serving.capture_destination not in (
            None,
            f"s3://{config.bucket_name(env, 'capture')}/datacapture",
        ):
            raise ValueError(
                f"monitoring reads s3://{config.bucket_name(env, 'capture')}/datacapture, the serving "
                f"stack captures to {self.serving.capture_destination}"
            )
        self.monitoring = MonitoringStack(
            self,
            "Monitoring",
            **stack("monitoring"),
            config=config,
            environment=env,
            spec=spec,
            endpoint_name=endpoint_name,
            model_package_group=settings.model_package_group,
            pipeline_name=settings.pipeline_name,
            capture_bucket_name=config.bucket_name(env, "capture"),
            monitoring_bucket_name=config.bucket_name(env, "monitoring"),
            artifact_bucket_name=config.bucket_name(env, "artifacts"),
            raw_bucket_name=config.bucket_name(env, "raw"),
            raw_prefix=settings.data_prefix,
            key=self.data.key,
            vpc=network.vpc,
            subnets=network.vpc.select_subnets(subnet_type=network.subnets.subnet_type).subnets,
            security_group=network.security_group,
            function_logs=FunctionLogs(
                key=self.data.logs_key,
                name_prefix=log_group_prefix(config, env),
                retention_days=env.retention.log_days,
                removal_policy=removal_policy(env),
            ),
        )
        for upstream in (self.data, self.network, self.model_build):
            self.monitoring.add_stack_dependency(upstream)
        if self.serving is not None:
            self.monitoring.add_stack_dependency(self.serving)

        Tags.of(self).add("project", config.project)
        for key, value in sorted(env.tags.items()):
            Tags.of(self).add(key, value)


def _synthesizer(env: Environment) -> DefaultStackSynthesizer:
    """The default bootstrap roles, with the partition written out (it is known from the
    region): the pipeline's deploy actions then name the CloudFormation execution role as a
    plain ARN, which cfn-lint can check, instead of an Fn::Join on AWS::Partition."""
    qualifier = CDK_QUALIFIER
    return DefaultStackSynthesizer(
        cloud_formation_execution_role=(
            f"arn:{env.partition}:iam::${{AWS::AccountId}}:role/cdk-{qualifier}-cfn-exec-role-${{AWS::AccountId}}-${{AWS::Region}}"
        ),
    )
