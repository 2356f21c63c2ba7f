"""Checks a definition against the published pipeline-definition JSON schema.

The schema (reference/, from aws-sagemaker-mlops) predates parts of the definition language
that SageMaker documents and the SDK emits.  They are added here, each named, and nothing
else is relaxed:

- top-level `PipelineExperimentConfig` and `MlflowConfig`;
- `PropertyFiles` on Processing steps (what `JsonGet` reads);
- the functions `Std:Join` and `Std:JsonGet` wherever a value may be a `Get` (the schema
  defines a `JoinFunction`, malformed and referenced nowhere);
- a retry policy's `ExceptionType` as a list of exception types, the form AWS documents
  (the schema has one string);
- request fields the API gained since: RegisterModel's `ModelApprovalStatus` and
  `CustomerMetadataProperties`, and a training job's (or tuning job's) `OutputDataConfig.CompressionType`.

The step requests themselves are checked field by field against botocore's service model
(`request_check.py`), which is current.

`strip_extensions` removes exactly those constructs, so a test can show that the untouched
schema accepts everything else in the definition.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from pipeline_steps.common.contract import ConfigError

SCHEMA_FILE = Path(__file__).with_name("reference") / "sagemaker-pipeline-definition.schema.json"
_ADDED_FIELDS = ("PropertyFiles", "ModelApprovalStatus", "CustomerMetadataProperties", "CompressionType")
_VALUE_KINDS = ("StringArgumentValue", "IntegerArgumentValue", "FloatArgumentValue", "BooleanArgumentValue")


class DefinitionSchemaError(ConfigError):
    pass


@lru_cache(maxsize=1)
def reference_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


@lru_cache(maxsize=1)
def extended_schema() -> dict[str, Any]:
    schema = copy.deepcopy(reference_schema())
    defs = schema["definitions"]
    schema["properties"]["PipelineExperimentConfig"] = {"type": ["object", "null"]}
    schema["properties"]["MlflowConfig"] = {"type": ["object", "null"]}
    defs["ProcessingStep"]["properties"]["PropertyFiles"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                name: {"type": "string"} for name in ("PropertyFileName", "OutputName", "FilePath")
            },
            "required": ["PropertyFileName", "OutputName", "FilePath"],
            "additionalProperties": False,
        },
    }
    exception_type = defs["RetryPolicy"]["properties"]["ExceptionType"]
    defs["RetryPolicy"]["properties"]["ExceptionType"] = {
        "type": "array",
        "items": exception_type,
        "minItems": 1,
    }
    function_value = {"$ref": "#/definitions/FunctionValue"}
    defs["FunctionValue"] = {
        "oneOf": [
            {"$ref": "#/definitions/GetFunction"},
            {"$ref": "#/definitions/StdJoinFunction"},
            {"$ref": "#/definitions/StdJsonGetFunction"},
        ]
    }
    defs["StdJoinFunction"] = {
        "type": "object",
        "properties": {
            "Std:Join": {
                "type": "object",
                "properties": {
                    "On": {"type": "string"},
                    "Values": {
                        "type": "array",
                        "items": {"anyOf": [{"type": ["string", "number", "boolean"]}, function_value]},
                    },
                },
                "required": ["Values"],
                "additionalProperties": False,
            }
        },
        "required": ["Std:Join"],
        "additionalProperties": False,
    }
    defs["StdJsonGetFunction"] = {
        "type": "object",
        "properties": {
            "Std:JsonGet": {
                "type": "object",
                "properties": {
                    "PropertyFile": {"$ref": "#/definitions/GetFunction"},
                    "Path": {"type": "string"},
                },
                "required": ["PropertyFile", "Path"],
                "additionalProperties": False,
            }
        },
        "required": ["Std:JsonGet"],
        "additionalProperties": False,
    }
    register_args = defs["RegisterModelStep"]["properties"]["Arguments"]["properties"]
    register_args["ModelApprovalStatus"] = {"$ref": "#/definitions/StringArgumentValue"}
    register_args["CustomerMetadataProperties"] = {
        "type": "object",
        "patternProperties": {".*": {"$ref": "#/definitions/StringArgumentValue"}},
    }
    for training_output in (
        defs["TrainingStep"]["properties"]["Arguments"]["properties"]["OutputDataConfig"],
        defs["HyperParameterTrainingJobDefinition"]["properties"]["OutputDataConfig"],
    ):
        training_output["properties"]["CompressionType"] = {"$ref": "#/definitions/StringArgumentValue"}
    for kind in _VALUE_KINDS:
        literal = [alt for alt in defs[kind]["oneOf"] if alt.get("$ref") != "#/definitions/GetFunction"]
        defs[kind] = {"oneOf": literal + [function_value]}
    return schema


def validate_definition(definition: dict[str, Any]) -> None:
    """Raises DefinitionSchemaError naming each place the definition breaks the schema."""
    validator = jsonschema.Draft7Validator(extended_schema())
    errors = sorted(validator.iter_errors(definition), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors[:10]:
            best = jsonschema.exceptions.best_match([error])
            path = "/".join(str(p) for p in best.absolute_path)
            lines.append(f"{path}: {best.message[:300]}")
        raise DefinitionSchemaError("pipeline definition breaks the schema:\n  " + "\n  ".join(lines))


def strip_extensions(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition without the constructs the reference schema predates."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) in ({"Std:Join"}, {"Std:JsonGet"}):
                return "function-value"
            kept = {k: strip(v) for k, v in value.items() if k not in _ADDED_FIELDS}
            if isinstance(kept.get("ExceptionType"), list):  # one policy per exception type
                kept["ExceptionType"] = kept["ExceptionType"][0]
            return kept
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    stripped = strip(definition)
    stripped.pop("PipelineExperimentConfig", None)
    stripped.pop("MlflowConfig", None)
    return stripped
