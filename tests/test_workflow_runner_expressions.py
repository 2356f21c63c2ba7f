import json

import pytest

from workflow.local_runner.expressions import Context, ExpressionError, evaluate_condition, json_path, resolve


@pytest.fixture
def ctx(tmp_path):
    report = tmp_path / "evaluation.json"
    report.write_text(json.dumps({"model": {"auc": 0.81}, "baseline": {"auc": "0.74"}, "curve": [{"x": 3}]}))
    return Context(
        parameters={"AucFloor": 0.7, "Name": "run"},
        execution={"PipelineExecutionId": "exec-1"},
        properties={"Steps.Train.ModelArtifacts.S3ModelArtifacts": "s3://b/model.tar.gz"},
        property_files={"Steps.Evaluate.PropertyFiles.EvaluationReport": report},
    )


def json_get(path):
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": path,
        }
    }


def test_get_join_and_jsonget_resolve_like_sagemaker(ctx):
    value = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3://bucket",
                {"Get": "Execution.PipelineExecutionId"},
                {"Get": "Parameters.Name"},
                json_get("model.auc"),
            ],
        }
    }
    assert resolve(value, ctx) == "s3://bucket/exec-1/run/0.81"
    assert resolve({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, ctx) == "s3://b/model.tar.gz"
    assert resolve(json_get("curve[0].x"), ctx) == 3


def test_execution_variables_stay_symbolic_for_cache_keys(ctx):
    ctx.symbolic_execution = True
    assert resolve({"Get": "Execution.PipelineExecutionId"}, ctx) == "{Execution.PipelineExecutionId}"


def test_conditions_compare_numbers_given_as_text(ctx):
    above_floor = {
        "Type": "GreaterThanOrEqualTo",
        "LeftValue": json_get("model.auc"),
        "RightValue": {"Get": "Parameters.AucFloor"},
    }
    beats_baseline = {
        "Type": "GreaterThan",
        "LeftValue": json_get("model.auc"),
        "RightValue": json_get("baseline.auc"),
    }
    assert evaluate_condition(above_floor, ctx)
    assert evaluate_condition(beats_baseline, ctx)
    assert not evaluate_condition({"Type": "Not", "Condition": beats_baseline}, ctx)
    assert evaluate_condition(
        {"Type": "Or", "Conditions": [{"Type": "Not", "Condition": above_floor}, above_floor]}, ctx
    )
    assert evaluate_condition(
        {"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["x", "run"]}, ctx
    )


@pytest.mark.parametrize(
    "expression, message",
    [
        ({"Get": "Parameters.Missing"}, "unknown parameter 'Missing'"),
        ({"Get": "Steps.Nope.X"}, "step property 'Steps.Nope.X' is not available"),
        ({"Std:Select": {}}, "unsupported pipeline function 'Std:Select'"),
    ],
)
def test_bad_expressions_name_the_problem(ctx, expression, message):
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(")):
        resolve(expression, ctx)


def test_jsonget_missing_path_names_it(ctx):
    with pytest.raises(ExpressionError, match="'model.recall' not found"):
        resolve(json_get("model.recall"), ctx)
    with pytest.raises(ExpressionError, match="not found"):
        json_path({"a": [1]}, "a[3]")
