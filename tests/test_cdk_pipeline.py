"""The delivery pipeline: source, synth, dev, (further environments), approval, prod; cross-account keys."""

from stacks.delivery_stack import SYNTH_COMMANDS


def _pipeline(pipeline_synth, delivery):
    t = pipeline_synth.template(delivery)
    (props,) = [r["Properties"] for r in t.find_resources("AWS::CodePipeline::Pipeline").values()]
    return t, props


def test_stages_in_order_with_manual_approval_first_in_prod(pipeline_synth, delivery):
    _, props = _pipeline(pipeline_synth, delivery)
    # No UpdatePipeline stage: without self-mutation (the default) no commit can remove the
    # approval below; pipeline changes are deployed by hand from a reviewed commit.
    assert not pipeline_synth.config.tooling.self_mutation
    assert [s["Name"] for s in props["Stages"]] == ["Source", "Build", "Assets", "Dev", "Prod"]
    stages = {s["Name"]: s["Actions"] for s in props["Stages"]}
    (approval,) = [a for a in stages["Prod"] if a["ActionTypeId"]["Category"] == "Approval"]
    deploys = [a for a in stages["Prod"] if a["ActionTypeId"]["Category"] == "Deploy"]
    assert approval["RunOrder"] < min(a["RunOrder"] for a in deploys)
    assert not [a for a in stages["Dev"] if a["ActionTypeId"]["Category"] == "Approval"]


def test_each_stage_deploys_into_its_account_and_region(pipeline_synth, delivery):
    _, props = _pipeline(pipeline_synth, delivery)
    stages = {s["Name"]: s["Actions"] for s in props["Stages"]}
    for name in ("Dev", "Prod"):
        env = pipeline_synth.config.environment(name.lower())
        deploys = [a for a in stages[name] if a["ActionTypeId"]["Category"] == "Deploy"]
        assert {a["Configuration"]["StackName"] for a in deploys} == {
            f"mlops-{env.name}-data",
            f"mlops-{env.name}-network",
            f"mlops-{env.name}-feature-store",
            f"mlops-{env.name}-model-build",
            f"mlops-{env.name}-serving",
            f"mlops-{env.name}-monitoring",
        }
        for action in deploys:
            assert f":iam::{env.account}:role/cdk-hnb659fds-deploy-role-{env.account}-{env.region}" in str(
                action["RoleArn"]
            )
            # CodePipeline omits Region when it equals the pipeline's own.
            assert action.get("Region", pipeline_synth.config.tooling.region) == env.region


def test_source_and_synth(pipeline_synth, delivery):
    t, props = _pipeline(pipeline_synth, delivery)
    source = props["Stages"][0]["Actions"][0]
    tooling = pipeline_synth.config.tooling
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == tooling.connection_arn
    assert source["Configuration"]["FullRepositoryId"] == tooling.repository
    assert source["Configuration"]["BranchName"] == tooling.branch
    buildspecs = [
        p["Properties"]["Source"]["BuildSpec"] for p in t.find_resources("AWS::CodeBuild::Project").values()
    ]
    synth = next(b for b in buildspecs if "make synth" in b)
    assert synth.index(SYNTH_COMMANDS[0]) < synth.index(SYNTH_COMMANDS[1])
    assert '"base-directory": "cdk.out"' in synth


def test_cross_account_keys(pipeline_synth, delivery):
    t, props = _pipeline(pipeline_synth, delivery)
    store = props["ArtifactStore"]
    assert store["EncryptionKey"]["Type"] == "KMS"
    key_id = store["EncryptionKey"]["Id"]["Fn::GetAtt"][0]
    key = t.find_resources("AWS::KMS::Key")[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    policy = str(key["KeyPolicy"])
    for env in pipeline_synth.config.environments:
        assert f":iam::{env.account}:role/cdk-hnb659fds-deploy-role-{env.account}-{env.region}" in policy


def test_artifact_bucket_is_versioned_and_logged(pipeline_synth, delivery):
    t, props = _pipeline(pipeline_synth, delivery)
    bucket = t.find_resources("AWS::S3::Bucket")[props["ArtifactStore"]["Location"]["Ref"]]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "pipeline-artifacts/"


def test_further_environments_go_between_dev_and_prod(delivery_with_staging_and_self_mutation):
    stack = delivery_with_staging_and_self_mutation  # the staging config (self-mutation on too)
    names = [s.stage_name for s in stack.pipeline.pipeline.stages]
    assert names[-3:] == ["Dev", "Staging", "Prod"]
    actions = {
        s.stage_name: [a.action_properties.action_name for a in s.actions]
        for s in stack.pipeline.pipeline.stages
    }
    assert actions["Prod"][0] == "Promote-to-prod"
    assert not [a for name in ("Dev", "Staging") for a in actions[name] if a.startswith("Promote")]
