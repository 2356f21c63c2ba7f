"""Human review of borderline decisions with SageMaker Ground Truth, and how its answers join
the late labels.

1. `borderline(...)`: captured records whose score lies within `margin` of the decision
   threshold (where a reviewer's judgement adds the most), at most `limit`, closest first.
2. `input_manifest(...)`: one Ground Truth manifest line per record: `source` is a readable
   summary of the application, `inference-id` the key the label must come back under.
3. `labeling_job_request(...)`: a CreateLabelingJob request (single-label text
   classification, the built-in pre-annotation and consolidation functions of the region, the
   private work team) — checked against botocore's model in the tests; no job runs there.
4. `labels_from_output(...)`: the job's output manifest -> ground-truth lines in Model
   Monitor's format (written under the endpoint's ground-truth prefix like any late label);
   records without a usable answer are returned with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.monitor.capture import CaptureReader
from workflow.monitoring.capture_files import ground_truth_line

LABEL_ATTRIBUTE = "repayment-outcome"
CATEGORIES = ("defaulted", "repaid")  # index 0 and 1 of the label category config
OUTCOME = {"defaulted": 1, "repaid": 0}
# Ground Truth's built-in text-classification functions are published per region by these accounts
# (SageMaker API reference, HumanTaskConfig).
BUILT_IN_ACCOUNTS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}


def borderline(
    files: Iterable[Path], spec: FeatureSpec, *, threshold: float, margin: float, limit: int
) -> list[dict[str, Any]]:
    reader = CaptureReader(spec)
    found: list[dict[str, Any]] = []
    for chunk in reader.chunks(files):
        close = abs(chunk.scores - threshold) <= margin
        for i in close.nonzero()[0]:
            record = {k: v for k, v in chunk.frame.iloc[int(i)].items() if isinstance(v, str) or v == v}
            found.append({"key": chunk.keys[i], "score": float(chunk.scores[i]), "record": record})
    found.sort(key=lambda r: abs(r["score"] - threshold))
    return found[:limit]


def input_manifest(records: list[dict[str, Any]]) -> str:
    lines = []
    for r in records:
        summary = "; ".join(f"{k}: {v}" for k, v in r["record"].items())
        lines.append(
            json.dumps({"source": summary, "inference-id": r["key"], "model-score": round(r["score"], 4)})
        )
    return "\n".join(lines) + "\n"


def label_category_config() -> str:
    return json.dumps({"document-version": "2018-11-28", "labels": [{"label": c} for c in CATEGORIES]})


def labeling_job_request(
    *,
    name: str,
    region: str,
    manifest_uri: str,
    output_uri: str,
    category_config_uri: str,
    ui_template_uri: str,
    workteam_arn: str,
    role_arn: str,
    kms_key_arn: str,
    partition: str = "aws",
) -> dict[str, Any]:
    if region not in BUILT_IN_ACCOUNTS:
        raise ValueError(
            f"no built-in Ground Truth functions listed for {region}: {sorted(BUILT_IN_ACCOUNTS)}"
        )
    account = BUILT_IN_ACCOUNTS[region]

    def function(kind: str) -> str:
        return f"arn:{partition}:lambda:{region}:{account}:function:{kind}-TextMultiClass"

    return {
        "LabelingJobName": name,
        "LabelAttributeName": LABEL_ATTRIBUTE,
        "InputConfig": {
            "DataSource": {"S3DataSource": {"ManifestS3Uri": manifest_uri}},
            "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
        },
        "OutputConfig": {"S3OutputPath": output_uri, "KmsKeyId": kms_key_arn},
        "RoleArn": role_arn,
        "LabelCategoryConfigS3Uri": category_config_uri,
        "StoppingConditions": {"MaxPercentageOfInputDatasetLabeled": 100},
        "HumanTaskConfig": {
            "WorkteamArn": workteam_arn,
            "UiConfig": {"UiTemplateS3Uri": ui_template_uri},
            "PreHumanTaskLambdaArn": function("PRE"),
            "TaskKeywords": ["credit", "review"],
            "TaskTitle": "Did this merchant repay?",
            "TaskDescription": "Borderline credit decisions: read the application and record the outcome",
            "NumberOfHumanWorkersPerDataObject": 3,
            "TaskTimeLimitInSeconds": 600,
            "TaskAvailabilityLifetimeInSeconds": 7 * 24 * 3600,
            "MaxConcurrentTaskCount": 100,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": function("ACS")},
        },
        "Tags": [{"Key": "purpose", "Value": "late-labels"}],
    }


def labels_from_output(lines: Iterable[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Ground Truth output manifest -> (ground-truth lines, rejected with reasons)."""
    accepted, rejected = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            rejected.append({"line": number, "reason": "not JSON"})
            continue
        key = item.get("inference-id")
        meta = item.get(f"{LABEL_ATTRIBUTE}-metadata") or {}
        if not key:
            rejected.append({"line": number, "reason": "no inference-id"})
        elif "failure-reason" in meta or LABEL_ATTRIBUTE not in item:
            rejected.append({"line": number, "key": key, "reason": meta.get("failure-reason", "no answer")})
        elif meta.get("class-name") not in OUTCOME:
            rejected.append(
                {"line": number, "key": key, "reason": f"unknown class {meta.get('class-name')!r}"}
            )
        else:
            # `<id>#<i>` (one record of a several-record invocation) is accepted by the monitor
            # as that record's own key: a project extension of Model Monitor's format
            accepted.append(ground_truth_line(key, OUTCOME[meta["class-name"]]))
    return accepted, rejected


UI_TEMPLATE = """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-classifier name="crowd-classifier" categories="{{ task.input.labels | to_json | escape }}"
                    header="Did this merchant repay the loan?">
    <classification-target>{{ task.input.taskObject }}</classification-target>
    <full-instructions header="Outcome">Use the repayment records, not the model score.</full-instructions>
    <short-instructions>Choose the outcome the records show.</short-instructions>
  </crowd-classifier>
</crowd-form>
"""
