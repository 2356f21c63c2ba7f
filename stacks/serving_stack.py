"""The environment's serving: the model version its config pins, deployed as the kind it asks for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

import constructs.acknowledge as nag
from config import Environment, ProjectConfig
from config.serving import Endpoint
from constructs import Construct
from constructs.alarm_topic import AlarmTopic
from constructs.approval_notice import ApprovalNotice
from constructs.async_endpoint import AsyncEndpoint
from constructs.batch_transform_schedule import BatchTransformSchedule
from constructs.endpoint_autoscaling import EndpointAutoscaling
from constructs.endpoint_execution_role import EndpointExecutionRole
from constructs.endpoint_observability import AlarmThresholds, EndpointObservability
from constructs.inference_endpoint import VARIANT_NAME, InferenceEndpoint
from constructs.multi_model_endpoint import MultiModelEndpoint
from constructs.realtime_endpoint import GuardedRollout, RealtimeEndpoint
from constructs.served_model import ServedModel, model_package_arn
from constructs.serverless_endpoint import ServerlessEndpoint

# Data capture goes to s3://<capture bucket>/datacapture; SageMaker appends
# <endpoint>/<variant>/yyyy/mm/dd/hh/ (the monitoring stack reads from there).
CAPTURE_PREFIX = "datacapture"
ASYNC_PREFIX = "async"  # capture bucket: async-inference results and failures, kept as long as capture
BATCH_OUTPUT_PREFIX = "batch-transform"  # artifact bucket


class ServingStack(Stack):
    """Wires the serving constructs for one environment from `environment.endpoint`:

    model package `<group>/<model_package_version>` (ARN built from config) -> ServedModel with
    its least-privilege role -> the endpoint of the configured kind (real-time with capture,
    autoscaling and a guarded rollout; serverless; async with S3 outputs, SNS topics and
    backlog scaling to zero; multi-model; or a scheduled batch transform) -> dashboard and
    alarms to an encrypted topic, which also receives the registry's approval notices.

    `serve_repository` is the repository of the serve image the model packages name (the
    model-build stack's asset): the model's role may pull from it.

    Exposes for other stacks (monitoring, review): `endpoint_name` (the model package group's
    name), `variant_name` (`AllTraffic`), `capture_destination` (`s3://<capture>/datacapture`,
    None when capture is off), `async_input_prefix` (where async callers put requests),
    `alarm_topic`, `endpoint_arn` (None for batch), `model`, `endpoint` (the construct, None for
    batch), `observability`, `autoscaling`, `batch`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ProjectConfig,
        environment: Environment,
        model_package_group: str,
        model_build_prefix: str,
        key: kms.IKey,
        raw_bucket_name: str,
        artifact_bucket_name: str,
        capture_bucket_name: str,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        serve_repository: ecr.IRepository | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        env = environment
        spec: Endpoint | None = env.endpoint
        if spec is None or env.model_package_version is None:
            raise ValueError(
                f"ServingStack: environment {env.name} has no endpoint or no model_package_version"
            )
        name = model_package_group
        self.endpoint_name, self.variant_name = name, VARIANT_NAME
        raw = s3.Bucket.from_bucket_name(self, "RawBucket", raw_bucket_name)
        artifacts = s3.Bucket.from_bucket_name(self, "ArtifactBucket", artifact_bucket_name)
        capture = s3.Bucket.from_bucket_name(self, "CaptureBucket", capture_bucket_name)
        self.capture_destination = (
            f"s3://{capture_bucket_name}/{CAPTURE_PREFIX}" if spec.capture.enabled else None
        )

        self.alarm_topic: sns.ITopic = AlarmTopic(
            self,
            "Alarms",
            topic_name=f"{name}-serving-alarms",
            key=key,
            alarm_name_prefix=f"{name}-",
        ).topic
        ApprovalNotice(
            self,
            "ApprovalNotice",
            model_package_group=name,
            topic=self.alarm_topic,
            config_field=f"environments.{env.name}.model_package_version",
        )

        # The model version and its least-privilege role: what it reads and writes per kind.
        kind = spec.kind
        reads: list[tuple[s3.IBucket, str]] = [(artifacts, f"{model_build_prefix}/")]
        writes: list[tuple[s3.IBucket, str]] = []
        if self.capture_destination:
            writes.append((capture, f"{CAPTURE_PREFIX}/{name}/"))
        async_topics: list[sns.ITopic] = []
        self.async_input_prefix: str | None = None
        if kind == "async":
            # Callers upload requests under input/ and read results under output/ and failure/.
            self.async_input_prefix = f"s3://{capture_bucket_name}/{ASYNC_PREFIX}/{name}/input/"
            reads.append((capture, f"{ASYNC_PREFIX}/{name}/input/"))
            writes += [(capture, f"{ASYNC_PREFIX}/{name}/{part}/") for part in ("output", "failure")]
            async_topics = [
                sns.Topic(
                    self,
                    f"Async{outcome}",
                    topic_name=f"{name}-async-{outcome.lower()}",
                    master_key=key,
                    enforce_ssl=True,
                )
                for outcome in ("Success", "Error")
            ]
        if kind == "multi-model":
            assert spec.multi_model is not None
            reads = [(artifacts, spec.multi_model.prefix)]
        if kind == "batch":
            assert spec.batch is not None
            reads.append((raw, spec.batch.input_prefix))
            writes.append((artifacts, f"{BATCH_OUTPUT_PREFIX}/{name}/"))
        in_vpc = spec.vpc
        self.execution_role = EndpointExecutionRole(
            self,
            "ExecutionRole",
            name=name,
            key=key,
            reads=reads,
            writes=writes,
            repositories=[serve_repository] if serve_repository is not None else [],
            topics=async_topics,
            vpc=vpc if in_vpc else None,
            transform_jobs=kind == "batch",
        )
        self.model_package_arn = model_package_arn(self, name, env.model_package_version)
        network: dict[str, Any] = (
            {"subnets": list(subnets), "security_group": security_group} if in_vpc else {}
        )
        if kind == "multi-model":
            assert spec.multi_model is not None
            self.model = ServedModel(
                self,
                "Model",
                role=self.execution_role.role,
                image_uri=spec.multi_model.image_uri,
                model_data_prefix=f"s3://{artifact_bucket_name}/{spec.multi_model.prefix}",
                network_isolation=spec.network_isolation,
                **network,
            )
        else:
            self.model = ServedModel(
                self,
                "Model",
                role=self.execution_role.role,
                model_package_arn=self.model_package_arn,
                network_isolation=spec.network_isolation,
                **network,
            )

        # The endpoint, or for batch the schedule of transform jobs.
        self.endpoint: InferenceEndpoint | None = None
        self.endpoint_arn: str | None = None
        self.autoscaling: EndpointAutoscaling | None = None
        self.observability: EndpointObservability | None = None
        self.batch: BatchTransformSchedule | None = None
        instance_type, count = env.instances.endpoint, env.instance_counts.endpoint
        if kind == "batch":
            assert spec.batch is not None
            self.batch = BatchTransformSchedule(
                self,
                "BatchTransform",
                job_name_prefix=name,
                model=self.model,
                schedule=spec.batch.schedule,
                input_uri=f"s3://{raw_bucket_name}/{spec.batch.input_prefix}",
                output_uri=f"s3://{artifact_bucket_name}/{BATCH_OUTPUT_PREFIX}/{name}",
                instance_type=instance_type,
                instance_count=spec.batch.instance_count,
                key=key,
                failure_topic=self.alarm_topic,
            )
        else:
            self.endpoint = self._endpoint(
                spec, name, instance_type, count, key, capture_bucket_name, async_topics
            )
            self.endpoint_arn = self.endpoint.endpoint_arn
            invoke = self.endpoint.grant_invoke_to_roles(spec.invokers)
            if invoke is not None and kind == "async":
                self._grant_async_objects(invoke, capture, key, name)
            CfnOutput(self, "EndpointName", value=name, description="The SageMaker endpoint")
        CfnOutput(
            self, "ModelPackageArn", value=self.model_package_arn, description="The model version served"
        )

    @staticmethod
    def _grant_async_objects(
        policy: iam.ManagedPolicy, capture: s3.IBucket, key: kms.IKey, name: str
    ) -> None:
        """Asynchronous callers put the request object under input/ and read the result under
        output/ or failure/ (all encrypted with the key); nothing else of the bucket."""
        prefix = f"{ASYNC_PREFIX}/{name}"
        policy.add_statements(
            iam.PolicyStatement(
                sid="PutAsyncRequests",
                actions=["s3:PutObject"],
                resources=[capture.arn_for_objects(f"{prefix}/input/*")],
            ),
            iam.PolicyStatement(
                sid="GetAsyncResults",
                actions=["s3:GetObject"],
                resources=[capture.arn_for_objects(f"{prefix}/{part}/*") for part in ("output", "failure")],
            ),
            iam.PolicyStatement(
                sid="UseTheDataKeyForThoseObjects",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{Stack.of(capture).region}.amazonaws.com"}
                },
            ),
        )
        nag.acknowledge(
            policy,
            "Asynchronous callers write request objects and read result objects under this endpoint's own "
            "input/, output/ and failure/ prefixes; SageMaker names the result objects per request.",
            *(
                f"AwsSolutions-IAM5[Resource::{capture.arn_for_objects(f'{prefix}/{part}/*')}]"
                for part in ("input", "output", "failure")
            ),
        )

    def _endpoint(
        self,
        spec: Endpoint,
        name: str,
        instance_type: str,
        count: int,
        key: kms.IKey,
        capture_bucket_name: str,
        async_topics: list[sns.ITopic],
    ) -> InferenceEndpoint:
        kind, scaling = spec.kind, spec.autoscaling
        capture: dict[str, Any] = {
            "capture_destination": self.capture_destination,
            "capture_sampling_percentage": spec.capture.sampling_percentage,
        }
        endpoint: InferenceEndpoint
        thresholds = AlarmThresholds(
            p99_latency_ms=spec.alarms.p99_latency_ms,
            error_rate_percent=spec.alarms.error_rate_percent,
            no_invocations_minutes=spec.alarms.no_invocations_minutes,
        )
        if kind == "realtime":
            # Alarms first: the rollout names them.  Their names are fixed strings built from
            # the endpoint name, so the endpoint construct can take them before it exists.
            observability = EndpointObservability(
                self,
                "Observability",
                endpoint_name=name,
                kind=kind,
                topic=self.alarm_topic,
                thresholds=thresholds,
            )
            rollout = None
            if spec.deployment is not None:
                d = spec.deployment
                rollout = GuardedRollout(
                    strategy=d.strategy,
                    rollback_alarm_names=[a.alarm_name for a in observability.rollback_alarms]
                    + list(d.rollback_alarms),
                    step_percent=d.step_percent,
                    wait_s=d.wait_s,
                    termination_wait_s=d.termination_wait_s,
                    max_execution_s=d.max_execution_s,
                )
                # SageMaker reads the rollback alarms with the endpoint's execution role.
                self.execution_role.allow_describe_alarms(rollout.rollback_alarm_names)
            endpoint = RealtimeEndpoint(
                self,
                "Endpoint",
                endpoint_name=name,
                model=self.model,
                instance_type=instance_type,
                instance_count=count,
                key=key,
                rollout=rollout,
                **capture,
            )
            # The rollout's alarms exist before the endpoint update that watches them.
            endpoint.endpoint.node.add_dependency(*observability.rollback_alarms)
            self.observability = observability
        else:
            if kind == "serverless":
                assert spec.serverless is not None
                endpoint = ServerlessEndpoint(
                    self,
                    "Endpoint",
                    endpoint_name=name,
                    model=self.model,
                    memory_mb=spec.serverless.memory_mb,
                    max_concurrency=spec.serverless.max_concurrency,
                    provisioned_concurrency=spec.serverless.provisioned_concurrency,
                )
            elif kind == "async":
                assert spec.async_ is not None
                success, error = async_topics
                endpoint = AsyncEndpoint(
                    self,
                    "Endpoint",
                    endpoint_name=name,
                    model=self.model,
                    instance_type=instance_type,
                    instance_count=count,
                    key=key,
                    output_path=f"s3://{capture_bucket_name}/{ASYNC_PREFIX}/{name}/output",
                    failure_path=f"s3://{capture_bucket_name}/{ASYNC_PREFIX}/{name}/failure",
                    success_topic=success,
                    error_topic=error,
                    max_concurrent_invocations_per_instance=spec.async_.max_concurrent_invocations_per_instance,
                    **capture,
                )
            else:
                endpoint = MultiModelEndpoint(
                    self,
                    "Endpoint",
                    endpoint_name=name,
                    model=self.model,
                    instance_type=instance_type,
                    instance_count=count,
                    key=key,
                    **capture,
                )
            self.observability = EndpointObservability(
                self,
                "Observability",
                endpoint_name=name,
                kind=kind,
                topic=self.alarm_topic,
                thresholds=thresholds,
            )
        if kind == "serverless":
            serverless = spec.serverless
            if serverless is not None and serverless.provisioned_concurrency:
                self.autoscaling = EndpointAutoscaling(
                    self,
                    "Autoscaling",
                    endpoint=endpoint,
                    min_capacity=serverless.provisioned_concurrency,
                    max_capacity=serverless.max_concurrency,
                    provisioned_concurrency_utilization=0.7,
                )
            return endpoint
        # Instances scale on invocations (real-time, multi-model) or on the queue's backlog
        # (async, down to zero instances).
        target: dict[str, int] = {"invocations_per_instance": scaling.invocations_per_instance}
        if kind == "async":
            assert spec.async_ is not None
            target = {"backlog_per_instance": spec.async_.backlog_per_instance}
        self.autoscaling = EndpointAutoscaling(
            self,
            "Autoscaling",
            endpoint=endpoint,
            min_capacity=scaling.min_capacity,
            max_capacity=scaling.max_capacity,
            scale_in_cooldown_s=scaling.scale_in_cooldown_s,
            scale_out_cooldown_s=scaling.scale_out_cooldown_s,
            **target,
        )
        return endpoint
