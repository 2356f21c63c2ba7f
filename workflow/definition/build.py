"""Builds the model-building pipeline's definition JSON, once, with the SageMaker SDK (v3).

    Preprocess -> Train -> Evaluate -> CheckModelQuality -(yes)-> RegisterModel
               \\-> IngestFeatures                       \\-(no)--> ModelBelowQualityBar (Fail)

CDK deploys exactly this JSON (placeholders filled by Fn::Sub) and the local runner executes
exactly this JSON (placeholders filled with local values).
"""

from __future__ import annotations

import json
from typing import Any

from pipeline_steps.common.contract import OPT_ML
from pipeline_steps.common.feature_spec import FeatureSpec
from workflow.definition import placeholders as s
from workflow.definition.job_parts import PROCESSING, JobParts
from workflow.definition.placeholders import placeholder
from workflow.definition.sdk import SENTINEL_ROLE_ARN, offline_session, shared_service_models
from workflow.definition.settings import PipelineSettings

STEP_PREPROCESS = "Preprocess"
STEP_INGEST = "IngestFeatures"
STEP_TRAIN = "Train"
STEP_TUNE = "Tune"
STEP_EVALUATE = "Evaluate"
STEP_CHECK = "CheckModelQuality"
STEP_REGISTER = "RegisterModel"
STEP_FAIL = "ModelBelowQualityBar"
EVALUATION_PROPERTY_FILE = "EvaluationReport"
PREPROCESS_PROPERTY_FILE = "PreprocessReport"


def build_definition(spec: FeatureSpec, settings: PipelineSettings) -> str:
    """The definition as a JSON string with `${...}` placeholders; deterministic."""
    return json.dumps(build_definition_dict(spec, settings), indent=1, sort_keys=False)


def build_definition_dict(spec: FeatureSpec, settings: PipelineSettings) -> dict[str, Any]:
    with shared_service_models():
        session = offline_session(settings.region)
        pipeline = _Builder(spec, settings, session).pipeline()
        definition = json.loads(pipeline.definition())
    # Run metadata belongs to each account's SageMaker Experiments set-up, not to the JSON.
    definition.pop("PipelineExperimentConfig", None)
    if definition.get("MlflowConfig") is None:
        definition.pop("MlflowConfig", None)
    text = json.dumps(definition).replace(SENTINEL_ROLE_ARN, placeholder(s.EXECUTION_ROLE))
    return json.loads(text)


class _Builder(JobParts):
    def __init__(self, spec: FeatureSpec, settings: PipelineSettings, session: Any) -> None:
        # Imported here: the SDK is slow to import and needs the offline session's env first.
        from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

        super().__init__(settings, session)
        self.spec = spec
        data = f"s3://{placeholder(s.RAW_BUCKET)}/{settings.data_prefix}"
        self.p_entities = ParameterString("EntitiesUri", default_value=f"{data}/entities/")
        self.p_history = ParameterString("HistoryUri", default_value=f"{data}/history/")
        self.p_spec = ParameterString("FeatureSpecUri", default_value=placeholder(s.FEATURE_SPEC_URI))
        self.p_proc_type = ParameterString(
            "ProcessingInstanceType", default_value=settings.processing_instance_type
        )
        self.p_proc_count = ParameterInteger(
            "ProcessingInstanceCount", default_value=settings.processing_instance_count
        )
        self.p_train_type = ParameterString(
            "TrainingInstanceType", default_value=settings.training_instance_type
        )
        self.p_train_count = ParameterInteger(
            "TrainingInstanceCount", default_value=settings.training_instance_count
        )
        self.p_eval_type = ParameterString(
            "EvaluationInstanceType", default_value=settings.evaluation_instance_type
        )
        self.p_eval_count = ParameterInteger(
            "EvaluationInstanceCount", default_value=settings.evaluation_instance_count
        )
        self.p_auc_floor = ParameterFloat("AucFloor", default_value=settings.auc_floor)
        # "model": the threshold training chose on validation; or a number in (0, 1).
        self.p_threshold = ParameterString("DecisionThreshold", default_value=settings.decision_threshold)
        # Where a person approves, the status is fixed in the definition (no parameter a caller
        # could set to Approved; IAM also refuses any other status), and the AUC floor is
        # checked at the configured value too, so a lower AucFloor cannot let a model through.
        self.manual_approval = settings.model_approval_status == "PendingManualApproval"
        self.p_approval = (
            settings.model_approval_status
            if self.manual_approval
            else ParameterString("ModelApprovalStatus", default_value=settings.model_approval_status)
        )
        self.p_code_version = ParameterString("CodeVersion", default_value="unversioned")
        # Data without a time column: the Feature Store event time is the run's as-of time,
        # this parameter or (empty) the execution's start time; never the time of synth.
        self.p_as_of = ParameterString("AsOfTime", default_value="")
        self.run_started = self.execution_variables.START_DATETIME
        # Why this run started (schedule, new data, a drift or quality alarm, manual), recorded
        # with the model version it registers; the retraining trigger sets it.
        self.p_trigger_reason = ParameterString("TriggerReason", default_value="manual")

    @property
    def parameters(self) -> list:
        params = [self.p_entities]
        if self.spec.history:
            params.append(self.p_history)
        return (
            params
            + [
                self.p_spec,
                self.p_proc_type,
                self.p_proc_count,
                self.p_train_type,
                self.p_train_count,
                self.p_eval_type,
                self.p_eval_count,
                self.p_auc_floor,
                self.p_threshold,
                *([] if self.manual_approval else [self.p_approval]),
                self.p_code_version,
                self.p_trigger_reason,
            ]
            + ([] if self.spec.time_in_data else [self.p_as_of])
        )

    def preprocess(self) -> Any:
        from sagemaker.core.workflow.properties import PropertyFile
        from sagemaker.mlops.workflow.steps import ProcessingStep

        spark = self.settings.preprocess_engine == "spark"
        inputs = [
            self.s3_input("spec", self.p_spec, f"{PROCESSING}/input/spec"),
            # Every instance reads every file: embedded, each owns the entities whose key hashes to
            # it (pipeline_steps/preprocess/sql/prepare.py); Spark, any executor reads any file.
            self.s3_input("entities", self.p_entities, f"{PROCESSING}/input/entities", "FullyReplicated"),
        ]
        arguments = [
            "--feature-spec",
            f"{PROCESSING}/input/spec",
            "--entities",
            f"{PROCESSING}/input/entities",
            "--output",
            f"{PROCESSING}/output",
        ]
        if not self.spec.time_in_data:
            arguments += ["--as-of-time", self.p_as_of, "--run-started", self.run_started]
        if self.spec.history:
            # Every instance reads the whole history and keeps its own entities' share.
            inputs.append(self.s3_input("history", self.p_history, f"{PROCESSING}/input/history"))
            arguments += ["--history", f"{PROCESSING}/input/history"]
        outputs = [
            self.s3_output("preprocess", name)
            for name in ("train", "validation", "test", "baseline", "quarantine", "feature_store", "report")
        ]
        self.preprocess_report = PropertyFile(
            name=PREPROCESS_PROPERTY_FILE, output_name="report", path="report.json"
        )
        if spark:
            from workflow.definition import spark_step

            inputs += spark_step.code_inputs(self)
            arguments = spark_step.as_tokens(arguments + ["--staging", spark_step.CLUSTER_STAGING])
            processor = spark_step.spark_processor(self, self.p_proc_type, self.p_proc_count)
        else:
            processor = self.processor("preprocess", self.p_proc_type, self.p_proc_count)
        return ProcessingStep(
            name=STEP_PREPROCESS,
            description="Validate, quarantine, de-duplicate, build point-in-time features, split by time"
            + (" (Spark)." if spark else "."),
            step_args=processor.run(inputs=inputs, outputs=outputs, arguments=arguments),
            property_files=[self.preprocess_report],
            cache_config=self.cache(),
            retry_policies=self.retries(),
        )

    def ingest(self, preprocess: Any) -> Any:
        """Preprocess's record files into the feature groups: in the VPC, not network isolated
        (it calls the Feature Store runtime)."""
        from sagemaker.mlops.workflow.steps import ProcessingStep

        records = preprocess.properties.ProcessingOutputConfig.Outputs["feature_store"].S3Output.S3Uri
        processor = self.processor("ingest", self.p_proc_type, 1, isolated=False)
        return ProcessingStep(
            name=STEP_INGEST,
            description="Load the Feature Store records into the feature groups (batched, idempotent).",
            step_args=processor.run(
                inputs=[
                    self.s3_input("spec", self.p_spec, f"{PROCESSING}/input/spec"),
                    self.s3_input("records", records, f"{PROCESSING}/input/feature_store"),
                ],
                outputs=[self.s3_output("ingest", "report")],
                arguments=[
                    "--feature-spec",
                    f"{PROCESSING}/input/spec",
                    "--records",
                    f"{PROCESSING}/input/feature_store",
                    "--feature-group-prefix",
                    self.settings.feature_group_prefix,
                    "--region",
                    self.settings.region,
                    "--output",
                    f"{PROCESSING}/output/report",
                ],
            ),
            cache_config=self.cache(),
            retry_policies=self.retries(),
        )

    def train(self, preprocess: Any) -> Any:
        from sagemaker.core.shapes import CheckpointConfig
        from sagemaker.core.training.configs import (
            Compute,
            InputData,
            Networking,
            OutputDataConfig,
            StoppingCondition,
        )
        from sagemaker.mlops.workflow.steps import TrainingStep
        from sagemaker.train.model_trainer import ModelTrainer

        outputs = preprocess.properties.ProcessingOutputConfig.Outputs
        spot = self.settings.use_spot_training
        subnets = [placeholder(s.subnet_placeholder(i)) for i in range(self.settings.subnet_count)]
        trainer = ModelTrainer(
            sagemaker_session=self.session,
            role=SENTINEL_ROLE_ARN,
            training_image=placeholder(s.IMAGE_PLACEHOLDERS["train"]),
            base_job_name="train",
            compute=Compute(
                instance_type=self.p_train_type,
                instance_count=self.p_train_count,
                volume_size_in_gb=30,
                volume_kms_key_id=placeholder(s.KMS_KEY),
                enable_managed_spot_training=spot,
            ),
            networking=Networking(
                subnets=subnets or None,
                security_group_ids=[placeholder(s.SECURITY_GROUP)] if subnets else None,
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
            ),
            hyperparameters=dict(self.settings.hyperparameters),
            output_data_config=OutputDataConfig(
                s3_output_path=self.output_uri("train", "model"), kms_key_id=placeholder(s.KMS_KEY)
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=self.settings.max_runtime_seconds,
                max_wait_time_in_seconds=2 * self.settings.max_runtime_seconds if spot else None,
            ),
            checkpoint_config=CheckpointConfig(
                s3_uri=self.output_uri("train", "checkpoints"), local_path=f"{OPT_ML}/checkpoints"
            )
            if spot
            else None,
        )
        step_args = trainer.train(
            input_data_config=[
                InputData(channel_name="train", data_source=outputs["train"].S3Output.S3Uri),
                InputData(channel_name="validation", data_source=outputs["validation"].S3Output.S3Uri),
                InputData(channel_name="spec", data_source=self.p_spec),
            ],
            wait=False,
        )
        return TrainingStep(
            name=STEP_TRAIN,
            description="XGBoost with early stopping on the validation split.",
            step_args=step_args,
            cache_config=self.cache(),
            retry_policies=self.retries(),
        )

    def tune(self, train: Any) -> Any:
        """A tuning job over the Train step's own request; it takes the Train step's place."""
        from sagemaker.core.workflow.functions import Join
        from sagemaker.mlops.workflow.steps import StepTypeEnum

        from workflow.definition.request_step import RequestStep
        from workflow.definition.tuning import tuning_request

        request = tuning_request(
            train.arguments,
            eval_metric=self.settings.hyperparameters.get("eval_metric", "auc"),
            max_jobs=self.settings.tuning_max_jobs,
            max_parallel=self.settings.tuning_max_parallel,
        )
        step = RequestStep(
            STEP_TUNE,
            StepTypeEnum.TUNING,
            request=request,
            description="Random search over XGBoost hyperparameters.",
            cache_config=self.cache(),
            retry_policies=self.retries(),
        )
        # Where SageMaker puts the best training job's model.
        model_uri = Join(
            on="/",
            values=[
                self.output_uri("train", "model"),
                step.properties.BestTrainingJob.TrainingJobName,
                "output",
                "model.tar.gz",
            ],
        )
        return step, model_uri

    def evaluate(self, preprocess: Any, model_uri: Any) -> Any:
        from sagemaker.core.workflow.properties import PropertyFile
        from sagemaker.mlops.workflow.steps import ProcessingStep

        outputs = preprocess.properties.ProcessingOutputConfig.Outputs
        inputs = [
            self.s3_input("model", model_uri, f"{PROCESSING}/input/model"),
            self.s3_input("test", outputs["test"].S3Output.S3Uri, f"{PROCESSING}/input/test"),
            self.s3_input("train", outputs["train"].S3Output.S3Uri, f"{PROCESSING}/input/train"),
            self.s3_input("spec", self.p_spec, f"{PROCESSING}/input/spec"),
        ]
        self.evaluation_report = PropertyFile(
            name=EVALUATION_PROPERTY_FILE, output_name="evaluation", path="evaluation.json"
        )
        processor = self.processor("evaluate", self.p_eval_type, self.p_eval_count)
        return ProcessingStep(
            name=STEP_EVALUATE,
            description="Model vs a logistic-regression baseline on the test split.",
            step_args=processor.run(
                inputs=inputs,
                outputs=[self.s3_output("evaluate", "evaluation")],
                arguments=[
                    "--model",
                    f"{PROCESSING}/input/model",
                    "--test",
                    f"{PROCESSING}/input/test",
                    "--train",
                    f"{PROCESSING}/input/train",
                    "--feature-spec",
                    f"{PROCESSING}/input/spec",
                    "--output",
                    f"{PROCESSING}/output/evaluation",
                    "--threshold",
                    self.p_threshold,
                ],
            ),
            property_files=[self.evaluation_report],
            cache_config=self.cache(),
            retry_policies=self.retries(),
        )

    def register(self, preprocess: Any, model_uri: Any, evaluate: Any) -> Any:
        from sagemaker.mlops.workflow.steps import StepTypeEnum

        from workflow.definition.request_step import RequestStep

        request = {
            "ModelPackageGroupName": self.settings.model_package_group,
            "ModelPackageDescription": f"XGBoost model for {self.spec.name}",
            "ModelApprovalStatus": self.p_approval,
            "InferenceSpecification": self.inference_specification(model_uri),
            "ModelMetrics": self.model_metrics(preprocess, evaluate),
            "CustomerMetadataProperties": self.lineage(evaluate),
        }
        return RequestStep(
            STEP_REGISTER,
            StepTypeEnum.REGISTER_MODEL,
            request=request,
            description="Register the model with its metrics and lineage.",
        )

    def inference_specification(self, model_uri: Any) -> dict[str, Any]:
        """The serving image with the model, and what it accepts and where it may run."""
        return {
            "Containers": [{"Image": placeholder(s.IMAGE_PLACEHOLDERS["serve"]), "ModelDataUrl": model_uri}],
            "SupportedContentTypes": ["application/json", "text/csv"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": list(self.settings.serving_instance_types),
            "SupportedTransformInstanceTypes": list(self.settings.serving_instance_types),
        }

    def model_metrics(self, preprocess: Any, evaluate: Any) -> dict[str, Any]:
        """Model quality (evaluation.json) and the data-quality baseline, in the registry's format."""
        from sagemaker.core.workflow.functions import Join

        evaluation = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
        # Evaluate writes the data-quality baseline from the whole train split (every preprocessing
        # instance's part), so the registered baseline is the same for one instance or N.
        baseline = evaluation

        def json_file(folder: Any, name: str) -> dict[str, Any]:
            return {"ContentType": "application/json", "S3Uri": Join(on="/", values=[folder, name])}

        return {
            "ModelQuality": {"Statistics": json_file(evaluation, "evaluation.json")},
            "ModelDataQuality": {
                "Statistics": json_file(baseline, "statistics.json"),
                "Constraints": json_file(baseline, "constraints.json"),
            },
        }

    def lineage(self, evaluate: Any) -> dict[str, Any]:
        """What the model was made from and how it scored: data, spec, code, run, report."""
        from sagemaker.core.workflow.functions import Join, JsonGet

        def metric(path: str) -> Any:
            return JsonGet(step_name=STEP_EVALUATE, property_file=self.evaluation_report, json_path=path)

        evaluation = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
        return {
            "data_sha256": JsonGet(
                step_name=STEP_PREPROCESS, property_file=self.preprocess_report, json_path="data_sha256"
            ),
            "feature_spec_sha256": self.spec.digest,
            "feature_spec_name": self.spec.name,
            "data_location": self.p_entities,
            "code_version": self.p_code_version,
            "trigger_reason": self.p_trigger_reason,
            "pipeline_execution_id": self.execution_id,
            "evaluation_report": Join(on="/", values=[evaluation, "report.html"]),
            "auc": metric("model.auc").to_string(),
            "baseline_auc": metric("baseline.auc").to_string(),
        }

    def check(self, evaluate: Any, register: Any) -> Any:
        from sagemaker.core.workflow.conditions import ConditionGreaterThan, ConditionGreaterThanOrEqualTo
        from sagemaker.core.workflow.functions import Join, JsonGet
        from sagemaker.mlops.workflow.condition_step import ConditionStep
        from sagemaker.mlops.workflow.fail_step import FailStep

        model_auc = JsonGet(
            step_name=evaluate.name, property_file=self.evaluation_report, json_path="model.auc"
        )
        baseline_auc = JsonGet(
            step_name=evaluate.name, property_file=self.evaluation_report, json_path="baseline.auc"
        )
        fail = FailStep(
            name=STEP_FAIL,
            error_message=Join(
                on="",
                values=[
                    "Model not registered: needs model AUC >= AucFloor and > baseline AUC; model auc=",
                    model_auc,
                    ", AucFloor=",
                    self.p_auc_floor,
                    ", baseline (logistic regression) auc=",
                    baseline_auc,
                    *([f", configured floor={self.settings.auc_floor}"] if self.manual_approval else []),
                ],
            ),
        )
        return ConditionStep(
            name=STEP_CHECK,
            description="Register only a model that beats the baseline and the AUC floor.",
            conditions=[
                ConditionGreaterThanOrEqualTo(left=model_auc, right=self.p_auc_floor),
                ConditionGreaterThan(left=model_auc, right=baseline_auc),
                *(
                    [ConditionGreaterThanOrEqualTo(left=model_auc, right=self.settings.auc_floor)]
                    if self.manual_approval
                    else []
                ),
            ],
            if_steps=[register],
            else_steps=[fail],
        )

    def pipeline(self) -> Any:
        from sagemaker.mlops.workflow.pipeline import Pipeline

        preprocess = self.preprocess()
        train = self.train(preprocess)
        if self.settings.tuning_max_jobs:
            fit, model_uri = self.tune(train)
        else:
            fit, model_uri = train, train.properties.ModelArtifacts.S3ModelArtifacts
        evaluate = self.evaluate(preprocess, model_uri)
        register = self.register(preprocess, model_uri, evaluate)
        from workflow.definition.transform import transform_steps

        test_uri = preprocess.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri
        batch = transform_steps(self, self.settings, register=register, test_uri=test_uri)
        check = self.check(evaluate, register)
        ingest = [self.ingest(preprocess)] if self.spec.feature_groups else []
        return Pipeline(
            name=self.settings.pipeline_name,
            parameters=self.parameters,
            steps=[preprocess, *ingest, fit, evaluate, check, *batch],  # batch: only after RegisterModel ran
            sagemaker_session=self.session,
            pipeline_experiment_config=None,
        )
