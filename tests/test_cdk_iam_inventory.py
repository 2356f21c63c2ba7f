"""Every IAM statement of every synthesized template (delivery pipeline, every environment of
both shared synths, the bootstrap policies) checked against the project's rules.

Rules are general (they hold for any stack added later), with a named allow-list where a
statement may break one, each entry with its reason.
"""

from __future__ import annotations

import json
import re

import iam_inventory as inv
import pytest

SAGEMAKER = "sagemaker.amazonaws.com"
# The one job-creation statement without network isolation: the IngestFeatures step.
INGEST_SID = "CreateIngestJobsInTheVpcOnly"
INGEST_STEP = "IngestFeatures"

# Wildcard actions allowed, each only where its check says, with the reason.
ALLOWED_ACTION_WILDCARDS = {
    "s3:GetObject*": "CDK Pipelines' grant_read on its own artifact bucket",
    "s3:GetBucket*": "CDK Pipelines' grant_read on its own artifact bucket; bucket settings in the "
    "CloudFormation execution policy (read-only, project buckets)",
    "s3:List*": "CDK Pipelines' grant_read on its own artifact bucket",
    "s3:Abort*": "CDK Pipelines' grant_read_write on its own artifact bucket",
    "s3:DeleteObject*": "CDK Pipelines' grant_read_write on its own artifact bucket (rebuilt every run)",
    "kms:GenerateDataKey*": "CDK's grants on one named key (pipeline artifacts; S3 replication)",
    "kms:ReEncrypt*": "CDK's grants on one named key (pipeline artifacts; S3 replication)",
    "ec2:Describe*": "CloudFormation reads the VPC resources it manages (read-only, one region)",
}
# A service wildcard in a VPC endpoint policy: the policy says who may use the endpoint (this
# account's principals); what they may do is their own IAM policies' business.
ENDPOINT_SERVICES = {"sagemaker", "logs", "cloudwatch", "sts", "kms"}
# Service trusts that carry no source conditions, with the reason.
TRUST_WITHOUT_SOURCE = {
    ("lambda.amazonaws.com", "Network"): "CDK's custom-resource Lambda role; Lambda assumes its execution "
    "role without source context",
    ("lambda.amazonaws.com", "Monitoring"): "the monitoring functions' execution roles (launcher, "
    "publisher, retraining trigger, label intake); Lambda assumes its execution role without source context",
    (SAGEMAKER, "FeatureStore"): "Feature Store's offline-store role: AWS documents source-context keys "
    "for SageMaker pipelines, processing and training, not Feature Store; a condition it does not send "
    "would stop ingestion",
}


@pytest.fixture(scope="module")
def statements(pipeline_synth, environments_synth, bootstrap_synth) -> list[inv.Statement]:
    files = [f for s in (pipeline_synth, environments_synth, bootstrap_synth) for f in s.template_files]
    found = inv.inventory(files)
    # delivery + 6 stacks x (dev, prod); 6 stacks x (dev, staging, prod); 3 bootstrap policies
    assert len(files) == 13 + 18 + 3 and len(found) > 300
    return found


def _is_pipeline_artifacts(s: inv.Statement) -> bool:
    return all("PipelineArtifactsBucket" in inv.text(r) for r in s.resources)


def _is_single_key(s: inv.Statement) -> bool:
    return len(s.resources) == 1 and (
        "EncryptionKey" in inv.text(s.resources[0]) or "DataKey" in inv.text(s.resources[0])
    )


# Known exception, to narrow: the serving stack's endpoint role (constructs/endpoint_execution_role.py)
# takes CDK's bucket.grant_read/grant_put on its model artifact and capture/output prefixes, so
# it has CDK's s3 read/put action sets; prefix_access's grants would drop List*/GetBucket* and the
# version reads.  Allowed only there, only these actions.
ENDPOINT_ROLE_S3_WILDCARDS = {"s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:Abort*"}


def _is_endpoint_role(s: inv.Statement) -> bool:
    return "Serving" in s.template and s.logical_id.startswith("ExecutionRoleDefaultPolicy")


def _is_cfn_execution_policy(s: inv.Statement) -> bool:
    return s.template.endswith("CfnExecutionPolicy.template.json")


def _wildcard_allowed(s: inv.Statement, action: str) -> bool:
    if s.resource_type == "AWS::EC2::VPCEndpoint":
        return action.endswith(":*") and action.split(":")[0] in ENDPOINT_SERVICES
    if action not in ALLOWED_ACTION_WILDCARDS:
        return False
    if action.startswith("s3:"):
        return (
            _is_pipeline_artifacts(s)
            or (action == "s3:GetBucket*" and _is_cfn_execution_policy(s))
            or (_is_endpoint_role(s) and action in ENDPOINT_ROLE_S3_WILDCARDS)
        )
    if action.startswith("kms:"):
        # In a key policy "*" is that one key (CDK's grants to a service principal there).
        return _is_single_key(s) or s.resource_type == "AWS::KMS::Key"
    return _is_cfn_execution_policy(s)


def test_no_action_wildcard_outside_the_allow_list(statements):
    offenders = [
        (s.where(), a)
        for s in statements
        if s.allows
        for a in s.actions
        if "*" in a and not _wildcard_allowed(s, a)
    ]
    assert offenders == []
    assert not [s.where() for s in statements if s.allows and ("*" in s.actions or "iam:*" in s.actions)]


def test_pass_role_only_to_named_services_and_only_project_roles(statements):
    passes = [s for s in statements if s.allows and any(a in ("iam:PassRole", "iam:*") for a in s.actions)]
    assert passes
    for s in passes:
        passed_to = s.conditions.get("StringEquals", {}).get("iam:PassedToService")
        assert passed_to, s.where()
        if _is_cfn_execution_policy(s):  # CloudFormation passes the project's roles to their services
            assert all(re.fullmatch(r"arn:aws:iam::\d{12}:role/mlops-[a-z]+-\*", r) for r in s.resources), s
            continue
        # Environments: the execution role passes itself, to SageMaker only.
        assert passed_to == SAGEMAKER, s.where()
        assert [r.get("Fn::GetAtt", [None])[0] for r in s.resources if isinstance(r, dict)] == [
            r["Fn::GetAtt"][0] for r in s.resources
        ] and len(s.resources) == 1, s.where()


def test_every_role_creating_kms_encrypted_jobs_may_create_grants_for_them(statements):
    creators = [
        s
        for s in statements
        if s.allows
        and any(
            re.match(r"sagemaker:Create(Processing|Training|HyperParameterTuning)Job$", a) for a in s.actions
        )
    ]
    # Two roles per environment (the pipeline's execution role, the monitor launcher): dev, prod
    # (pipeline synth); dev, staging, prod.
    assert len({(s.template, s.logical_id) for s in creators}) == 2 * 5
    for create in creators:
        conditions = create.conditions
        key = conditions["ArnEquals"]["sagemaker:VolumeKmsKey"]
        assert conditions["ArnEquals"]["sagemaker:OutputKmsKey"] == key
        isolation = {"sagemaker:NetworkIsolation": "true"}
        if create.sid == INGEST_SID:  # IngestFeatures calls the Feature Store runtime
            assert create.actions == ("sagemaker:CreateProcessingJob",)
            isolation = {}
        assert conditions["Bool"] == {**isolation, "sagemaker:InterContainerTrafficEncryption": "true"}
        assert conditions["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
        assert conditions["Null"]["sagemaker:InstanceTypes"] == "false"
        same_role = [
            s for s in statements if s.template == create.template and s.logical_id == create.logical_id
        ]
        (grant,) = [s for s in same_role if "kms:CreateGrant" in s.actions]
        assert grant.actions == ("kms:CreateGrant",) and grant.resources == (key,)
        assert grant.conditions["Bool"] == {"kms:GrantIsForAWSResource": "true"}
        assert re.fullmatch(
            r"sagemaker\.[a-z0-9-]+\.amazonaws\.com", grant.conditions["StringEquals"]["kms:ViaService"]
        )


def test_instance_types_are_bound_to_the_environments_configured_types(pipeline_synth, environments_synth):
    for synth in (pipeline_synth, environments_synth):
        for env in synth.config.environments:
            statement = _create_jobs_statement(synth, env.name)
            allowed = statement["Condition"]["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
            assert allowed == sorted(
                {env.instances.processing, env.instances.training, env.instances.evaluation}
            )


def _create_jobs_statement(synth, env_name, sid="CreateJobsInTheVpcOnly"):
    stage = (
        synth.app.node.find_child("Delivery").stages[env_name]
        if synth.app.node.try_find_child("Delivery")
        else synth.app.node.find_child(env_name.capitalize())
    )
    template = synth.template(stage.model_build).to_json()
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    return next(
        s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == sid
    )


def test_nothing_deletes_registered_artifacts_or_approves_models(statements):
    for s in statements:
        if not s.allows or _is_cfn_execution_policy(s):
            continue
        deletes = [a for a in s.actions if a.startswith("s3:Delete") or a == "s3:*"]
        if deletes:
            # Only CDK Pipelines' own artifact bucket and Feature Store's own offline-store prefix.
            assert _is_pipeline_artifacts(s) or "/feature-store/" in s.resource_text(), s.where()
            assert not re.search(r"-(raw|artifacts)-", s.resource_text()), s.where()
        assert not [a for a in s.actions if re.match(r"sagemaker:(Update|Delete)ModelPackage", a)], s.where()


def test_approval_status_is_fixed_where_approval_is_manual(pipeline_synth, environments_synth):
    for synth in (pipeline_synth, environments_synth):
        for env in synth.config.environments:
            stage = (
                synth.app.node.find_child("Delivery").stages[env.name]
                if synth.app.node.try_find_child("Delivery")
                else synth.app.node.find_child(env.name.capitalize())
            )
            template = synth.template(stage.model_build).to_json()
            policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
            (create,) = [
                s
                for p in policies
                for s in p["Properties"]["PolicyDocument"]["Statement"]
                if "sagemaker:CreateModelPackage" in inv.as_list(s["Action"])
            ]
            assert inv.as_list(create["Action"]) == ["sagemaker:CreateModelPackage"]
            (pipeline,) = [
                r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"
            ]
            definition = json.loads(
                pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
            )
            parameters = {p["Name"] for p in definition["Parameters"]}
            register = next(s for s in _steps(definition) if s["Type"] == "RegisterModel")
            check = next(s for s in _steps(definition) if s["Type"] == "Condition")
            floors = [
                c["RightValue"]
                for c in check["Arguments"]["Conditions"]
                if c["Type"] == "GreaterThanOrEqualTo" and not isinstance(c["RightValue"], dict)
            ]
            if env.approval == "manual":
                assert create["Condition"] == {
                    "StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
                }, env.name
                assert register["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"
                assert "ModelApprovalStatus" not in parameters
                assert floors == [env.thresholds.auc_floor]  # AucFloor cannot lower it
            else:
                assert "Condition" not in create, env.name
                assert register["Arguments"]["ModelApprovalStatus"] == {
                    "Get": "Parameters.ModelApprovalStatus"
                }
                assert floors == []


def _steps(definition):
    for step in definition["Steps"]:
        yield step
        for branch in ("IfSteps", "ElseSteps"):
            yield from step.get("Arguments", {}).get(branch, [])


def test_service_trust_policies_carry_source_conditions(statements):
    trusts = [
        s
        for s in statements
        if s.kind == inv.TRUST and isinstance(s.principal, dict) and "Service" in s.principal
    ]
    assert len(trusts) > 20
    unconditioned = []
    for s in trusts:
        conditions = json.dumps(s.conditions)
        if "aws:SourceAccount" in conditions and "aws:SourceArn" in conditions:
            continue
        service = s.principal["Service"]
        if not any(service == svc and part in s.template for (svc, part) in TRUST_WITHOUT_SOURCE):
            unconditioned.append((s.where(), service))
    assert unconditioned == []


def test_trust_to_other_principals_is_only_within_the_pipeline(statements):
    """Role trusts that name an AWS principal: only CDK Pipelines' action roles, assumed by the
    pipeline's own role; no account root."""
    for s in statements:
        if s.kind == inv.TRUST and isinstance(s.principal, dict) and "AWS" in s.principal:
            assert "PipelineRole" in json.dumps(s.principal), s.where()


def _job_requests(definition):
    """(step name, kind, request) of every job the definition starts; a tuning step's request
    is its training job definition."""
    for step in _steps(definition):
        arguments = step.get("Arguments", {})
        if step["Type"] == "Processing":
            yield step["Name"], "processing", arguments
        elif step["Type"] == "Training":
            yield step["Name"], "training", arguments
        elif step["Type"] == "Tuning":
            yield step["Name"], "training", arguments["TrainingJobDefinition"]


def test_the_pipelines_own_jobs_meet_the_create_conditions(pipeline_synth, environments_synth):
    """The conditions must not refuse the jobs the definition starts with its default
    parameters: same key, isolation, encryption, subnets, security group, instance types."""
    for synth in (pipeline_synth, environments_synth):
        for env in synth.config.environments:
            stage = (
                synth.app.node.find_child("Delivery").stages[env.name]
                if synth.app.node.try_find_child("Delivery")
                else synth.app.node.find_child(env.name.capitalize())
            )
            template = synth.template(stage.model_build).to_json()
            (pipeline,) = [
                r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"
            ]
            body, variables = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"][
                "Fn::Sub"
            ]
            definition = json.loads(body)
            defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
            isolated = _create_jobs_statement(synth, env.name)["Condition"]
            not_isolated = _create_jobs_statement(synth, env.name, INGEST_SID)["Condition"]

            def value(v, defaults=defaults, variables=variables):
                """A request value as the job gets it: parameter defaults, Fn::Sub variables."""
                if isinstance(v, dict) and set(v) == {"Get"}:
                    return defaults[v["Get"].removeprefix("Parameters.")]
                if isinstance(v, str) and v.startswith("${"):
                    return variables[v[2:-1]]
                return v

            jobs = list(_job_requests(definition))
            assert {kind for _, kind, _ in jobs} == {"processing", "training"}
            assert INGEST_STEP in {name for name, _, _ in jobs}
            for name, kind, request in jobs:
                condition = not_isolated if name == INGEST_STEP else isolated
                allowed = condition["ForAllValues:StringEquals"]
                if kind == "processing":
                    cluster = request["ProcessingResources"]["ClusterConfig"]
                    volume, output = cluster["VolumeKmsKeyId"], request["ProcessingOutputConfig"]["KmsKeyId"]
                    network = request["NetworkConfig"]
                    isolation = network["EnableNetworkIsolation"]
                    encryption = network["EnableInterContainerTrafficEncryption"]
                    vpc, instance_type = network["VpcConfig"], cluster["InstanceType"]
                else:
                    volume = request["ResourceConfig"]["VolumeKmsKeyId"]
                    output = request["OutputDataConfig"]["KmsKeyId"]
                    isolation = request["EnableNetworkIsolation"]
                    encryption = request["EnableInterContainerTrafficEncryption"]
                    vpc, instance_type = request["VpcConfig"], request["ResourceConfig"]["InstanceType"]
                key = condition["ArnEquals"]["sagemaker:VolumeKmsKey"]
                assert value(volume) == value(output) == key, name
                assert encryption is True, name
                assert isolation is (name != INGEST_STEP), name
                assert ("sagemaker:NetworkIsolation" in condition["Bool"]) is (name != INGEST_STEP)
                assert value(instance_type) in allowed["sagemaker:InstanceTypes"], name
                assert [value(s) for s in vpc["Subnets"]] == allowed["sagemaker:VpcSubnets"], name
                assert [value(g) for g in vpc["SecurityGroupIds"]] == allowed["sagemaker:VpcSecurityGroupIds"]
                runtime = request["StoppingCondition"]["MaxRuntimeInSeconds"]
                assert runtime <= int(
                    condition["NumericLessThanEqualsIfExists"]["sagemaker:MaxRuntimeInSeconds"]
                )
