"""A SageMaker pipeline whose definition is the JSON the project's builder produces."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from workflow.definition.placeholders import NAME as _NAME
from workflow.definition.placeholders import PLACEHOLDER as _PLACEHOLDER

# CreatePipeline's PipelineDefinition: at most 1,048,576 characters (SageMaker API reference).
MAX_DEFINITION_CHARS = 1_048_576
# A filled-in placeholder is an id, a bucket name, an ARN or an image URI; ARNs are at most 2048.
MAX_VALUE_CHARS = 2048


class PipelineDefinitionError(ValueError):
    """The definition cannot be deployed as is; the message says why."""


class SageMakerPipeline(Construct):
    """`AWS::SageMaker::Pipeline` running `definition` (the builder's JSON,
    `workflow.definition.cached.definition_text`), byte for byte, with its `${Name}`
    placeholders filled by `Fn::Sub` from `variables` (name -> CDK token or string).

    Fails at synth (PipelineDefinitionError) if a placeholder has no variable or a variable no
    placeholder, or if the filled-in definition could exceed CreatePipeline's size limit.

    Exposes `resource` (the L1), `pipeline_name`, `arn`, `definition_text` (the builder's JSON)
    and `placeholders` (the names it uses, sorted); `grant_start` and `grant_read` for whoever
    runs or watches it (a schedule, a retraining trigger, a reviewer).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        definition: str,
        role_arn: str,
        variables: Mapping[str, str],
        description: str,
    ) -> None:
        super().__init__(scope, id)
        self.pipeline_name = pipeline_name
        self.definition_text = definition
        self.placeholders = check_placeholders(self.definition_text, variables)
        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=pipeline_name,
            pipeline_description=description,
            role_arn=role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": Fn.sub(self.definition_text, dict(sorted(variables.items())))
            },
        )
        # SageMaker writes resource names in lower case in its ARNs.
        self.arn = Stack.of(self).format_arn(
            service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower()
        )

    def grant_start(self, grantee: iam.IGrantable) -> iam.Grant:
        """Start, stop and retry executions of this pipeline (and read them)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sagemaker:StartPipelineExecution",
                "sagemaker:StopPipelineExecution",
                "sagemaker:RetryPipelineExecution",
                "sagemaker:DescribePipelineExecution",
            ],
            resource_arns=[self.arn, f"{self.arn}/execution/*"],
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Describe the pipeline and list and describe its executions and their steps."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sagemaker:DescribePipeline",
                "sagemaker:DescribePipelineDefinitionForExecution",
                "sagemaker:DescribePipelineExecution",
                "sagemaker:ListPipelineExecutions",
                "sagemaker:ListPipelineExecutionSteps",
            ],
            resource_arns=[self.arn, f"{self.arn}/execution/*"],
        )


def check_placeholders(definition_text: str, variables: Mapping[str, str]) -> list[str]:
    """The definition's placeholder names, after checking that `variables` covers exactly them
    and that the filled-in definition stays within CreatePipeline's limit."""
    found = _PLACEHOLDER.findall(definition_text)
    bad = sorted({name for name in found if not _NAME.match(name)})
    if bad:
        raise PipelineDefinitionError(
            f"pipeline definition: placeholders {bad} are not plain names (letters, digits)"
        )
    names = set(found)
    missing, unused = sorted(names - set(variables)), sorted(set(variables) - names)
    if missing or unused:
        raise PipelineDefinitionError(
            "pipeline definition and Fn::Sub variables disagree: "
            f"placeholders without a variable {missing}, variables without a placeholder {unused}"
        )
    bound = len(_PLACEHOLDER.sub("", definition_text)) + len(found) * MAX_VALUE_CHARS
    if bound > MAX_DEFINITION_CHARS:
        raise PipelineDefinitionError(
            f"pipeline definition: {len(definition_text)} characters with {len(found)} placeholders could "
            f"exceed CreatePipeline's {MAX_DEFINITION_CHARS} once filled in; deploy it from S3 instead"
        )
    return sorted(names)
