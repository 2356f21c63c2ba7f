"""Human review: borderline records from capture, the Ground Truth labeling-job request
(checked against botocore's model; no job runs), the join of its output to the late labels,
the private work team construct is asserted in test_cdk_monitoring.py (staging has it)."""

from __future__ import annotations

import json
from datetime import datetime

import botocore.session
import pytest
from botocore.validate import ParamValidator

from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.monitor.labels import read_labels
from workflow.monitoring import labeling
from workflow.monitoring.capture_files import capture_line, hour_path

SPEC = load_spec("workflow/specs/merchant_credit.yaml")
RECORD = "m-1,retail,north,24,3,12000,700,5000,1,100,90,20,0,500,480,2,12"


@pytest.fixture
def capture(tmp_path):
    scores = [0.05, 0.29, 0.31, 0.33, 0.5, 0.9]
    lines = [
        capture_line(RECORD, p, event_id=f"e{i}", inference_id=f"inf-{i}", when=datetime(2026, 11, 30, 10))
        for i, p in enumerate(scores)
    ]
    folder = hour_path(tmp_path / "capture", datetime(2026, 11, 30, 10))
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n")
    return sorted((tmp_path / "capture").rglob("*.jsonl"))


def test_borderline_records_closest_first(capture):
    found = labeling.borderline(capture, SPEC, threshold=0.3, margin=0.05, limit=2)
    assert [r["key"] for r in found] == ["inf-1", "inf-2"]
    assert found[0]["record"]["industry"] == "retail"
    manifest = [json.loads(line) for line in labeling.input_manifest(found).splitlines()]
    assert manifest[0]["inference-id"] == "inf-1" and "industry: retail" in manifest[0]["source"]


def test_labeling_job_request_matches_botocore_model():
    request = labeling.labeling_job_request(
        name="mlops-dev-merchant-credit-review-2026113012",
        region="eu-west-1",
        manifest_uri="s3://mlops-dev-monitoring/labeling/input.manifest",
        output_uri="s3://mlops-dev-monitoring/labeling/output/",
        category_config_uri="s3://mlops-dev-monitoring/labeling/categories.json",
        ui_template_uri="s3://mlops-dev-monitoring/labeling/template.liquid.html",
        workteam_arn="arn:aws:sagemaker:eu-west-1:111111111111:workteam/private-crowd/mlops-dev-reviewers",
        role_arn="arn:aws:iam::111111111111:role/labeling",
        kms_key_arn="arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000",
    )
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("CreateLabelingJob")
        .input_shape
    )
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    task = request["HumanTaskConfig"]
    assert (
        task["PreHumanTaskLambdaArn"] == "arn:aws:lambda:eu-west-1:568282634449:function:PRE-TextMultiClass"
    )
    assert task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"].endswith(
        ":ACS-TextMultiClass"
    )
    assert json.loads(labeling.label_category_config())["labels"] == [
        {"label": "defaulted"},
        {"label": "repaid"},
    ]
    with pytest.raises(ValueError, match="no built-in"):
        labeling.labeling_job_request(**{**_args(), "region": "mx-central-1"})


def _args() -> dict:
    return {
        "name": "n", "region": "eu-west-1", "manifest_uri": "s3://b/m", "output_uri": "s3://b/o",
        "category_config_uri": "s3://b/c", "ui_template_uri": "s3://b/t", "workteam_arn": "arn:w",
        "role_arn": "arn:r", "kms_key_arn": "arn:k",
    }  # fmt: skip


def test_output_joins_the_late_labels(tmp_path):
    attr = labeling.LABEL_ATTRIBUTE

    def answer(key: str, cls: str) -> str:
        return json.dumps(
            {
                "source": "...",
                "inference-id": key,
                attr: 0,
                f"{attr}-metadata": {"class-name": cls, "confidence": 0.9},
            }
        )

    output = [
        answer("inf-1", "defaulted"),
        answer("inf-2", "repaid"),
        answer("inf-3#2", "defaulted"),  # one record of a several-record invocation
        json.dumps(
            {"source": "...", "inference-id": "inf-4", f"{attr}-metadata": {"failure-reason": "timed out"}}
        ),
        answer("inf-5", "maybe"),
        "{broken",
    ]
    accepted, rejected = labeling.labels_from_output(output)
    assert [r["reason"] for r in rejected] == ["timed out", "unknown class 'maybe'", "not JSON"]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(accepted) + "\n")
    labels = read_labels([path], SPEC)
    assert labels.labels == {"inf-1": 1.0, "inf-2": 0.0, "inf-3#2": 1.0} and labels.rejected_lines == 0
