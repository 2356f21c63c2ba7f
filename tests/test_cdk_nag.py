"""cdk-nag (AwsSolutions + NIST 800-53 R5) is a gate: every synth has zero unacknowledged findings,
and an insecure resource fails the synth."""

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

PACKS = {"AwsSolutions", "NIST.800.53.R5"}
# The synth is picked by name (parametrized): name the synths so this module runs with the
# other synth users (tests/conftest.py groups them on one xdist worker) instead of re-synthesizing.
pytestmark = pytest.mark.usefixtures("pipeline_synth", "environments_synth", "serving_synth")


@pytest.mark.parametrize("synth_name", ["pipeline_synth", "environments_synth", "serving_synth"])
def test_zero_unacknowledged_findings(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    assert synth.error is None, f"synth failed:\n{synth.error}"
    reports = {r["pluginName"]: r for r in synth.validation_report["pluginReports"]}
    assert set(reports) >= PACKS  # both packs ran
    for name, report in reports.items():
        assert report["conclusion"] == "success", name
        assert report["violations"] == [], (name, report["violations"][:3])
    # Every acknowledgement carries a reason (nag ran and saw them).
    acknowledged = [v for name in PACKS for v in reports[name]["suppressedViolations"]]
    assert acknowledged and all(len(v["reason"]) >= 20 for v in acknowledged)


def test_gate_fails_on_an_insecure_bucket(tmp_path):
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Throwaway")
    s3.Bucket(stack, "Insecure")  # no KMS, no TLS-only policy, no access logs, no versioning
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    import json

    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for r in report["pluginReports"] for v in r["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10", "NIST.800.53.R5-S3DefaultEncryptionKMS"} <= rules
