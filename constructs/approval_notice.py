"""Tell the team when a model package is approved, with the config change that would serve it."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns

from constructs import Construct


class ApprovalNotice(Construct):
    """An EventBridge rule on SageMaker's "Model Package State Change" events for
    `model_package_group` whose approval status turns `Approved`, publishing to `topic` the
    group, the version and the one-line config change that serves it (`config_field`).

    The served version lives in config (the source of truth a pull request reviews), so an
    approval records the version for the next pull request; it does not deploy by itself.
    Exposes `rule`.
    """

    def __init__(
        self, scope: Construct, id: str, *, model_package_group: str, topic: sns.ITopic, config_field: str
    ) -> None:
        super().__init__(scope, id)
        version = events.EventField.from_path("$.detail.ModelPackageVersion")
        arn = events.EventField.from_path("$.detail.ModelPackageArn")
        self.rule = events.Rule(
            self,
            "Approved",
            description=f"A model package of {model_package_group} was approved",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [model_package_group], "ModelApprovalStatus": ["Approved"]},
            ),
            targets=[
                targets.SnsTopic(
                    topic,
                    message=events.RuleTargetInput.from_text(
                        f"Model package {arn} (version {version} of {model_package_group}) is Approved. "
                        f"To serve it, set {config_field}: {version} in config/environments.yaml and open a "
                        "pull request; the delivery pipeline deploys it to this environment, and prod only "
                        "after the manual approval."
                    ),
                )
            ],
        )
