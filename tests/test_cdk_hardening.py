"""Production hardening beyond IAM (see test_cdk_iam_inventory.py for IAM): stateful resources
retained and stacks protected where config says, endpoint policies and egress, declared log
groups, pinned CLIs in the delivery pipeline, bucket policies, acknowledgements that all match a
finding, and a CloudFormation execution policy that covers what the stacks declare.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import iam_inventory as inv
from aws_cdk import Stage, Validations
from aws_cdk.assertions import Template

from constructs.network import DYNAMODB_ACTIONS, INTERFACE_ENDPOINTS
from stacks.delivery_stack import CDK_ASSETS_VERSION

REPO_ROOT = Path(__file__).resolve().parent.parent
STATEFUL = (
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::SageMaker::FeatureGroup",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::Glue::Database",
    "AWS::Logs::LogGroup",
)
ALWAYS_RETAINED = ("AWS::S3::Bucket", "AWS::KMS::Key")  # data and the keys that read it
PACKS = ("AwsSolutions::", "NIST.800.53.R5::")


def _stages(synth):
    delivery = synth.app.node.try_find_child("Delivery")
    if delivery is not None:
        return dict(delivery.stages)
    return {env.name: synth.app.node.find_child(env.name.capitalize()) for env in synth.config.environments}


def _stacks(stage):
    serving = getattr(stage, "serving", None)  # absent where the environment serves nothing
    return [stage.data, stage.network, stage.feature_store, stage.model_build, stage.monitoring] + (
        [serving] if serving else []
    )


def test_stateful_resources_follow_the_environments_protection(pipeline_synth, environments_synth):
    seen = set()
    for synth in (pipeline_synth, environments_synth):
        for name, stage in _stages(synth).items():
            env = synth.config.environment(name)
            for stack in _stacks(stage):
                assert stack.termination_protection is env.protection.termination_protection, stack.stack_name
                resources = synth.template(stack).to_json()["Resources"]
                for logical_id, resource in resources.items():
                    if resource["Type"] not in STATEFUL:
                        continue
                    seen.add(resource["Type"])
                    retained = env.protection.retain or resource["Type"] in ALWAYS_RETAINED
                    expected = "Retain" if retained else "Delete"
                    assert resource.get("DeletionPolicy") == expected, (stack.stack_name, logical_id)
                    assert resource.get("UpdateReplacePolicy") == expected, (stack.stack_name, logical_id)
    assert seen == set(STATEFUL)
    prod = pipeline_synth.config.environment("prod").protection
    assert prod.retain and prod.termination_protection  # the shipped prod config


def test_delivery_stack_is_protected_and_keeps_its_artifact_key(pipeline_synth, delivery):
    assert delivery.termination_protection is pipeline_synth.config.tooling.termination_protection is True
    resources = pipeline_synth.template(delivery).to_json()["Resources"]
    for resource in resources.values():
        if resource["Type"] in ("AWS::KMS::Key", "AWS::S3::Bucket", "AWS::Logs::LogGroup"):
            assert resource.get("DeletionPolicy") == "Retain", resource


def test_endpoint_policies_scope_the_endpoints(pipeline_synth):
    for name, stage in _stages(pipeline_synth).items():
        env = pipeline_synth.config.environment(name)
        endpoints = pipeline_synth.template(stage.network).find_resources("AWS::EC2::VPCEndpoint")
        # S3 and DynamoDB gateways + interface endpoints
        assert len(endpoints) == 2 + len(INTERFACE_ENDPOINTS)
        for endpoint in endpoints.values():
            statements = endpoint["Properties"]["PolicyDocument"]["Statement"]
            assert statements
            if "dynamodb" in str(endpoint["Properties"]["ServiceName"]):
                # the retraining trigger's item calls, on this account's tables in this region
                [table] = statements
                assert sorted(inv.as_list(table["Action"])) == DYNAMODB_ACTIONS
                assert "*" not in str(table["Action"])
                assert table["Resource"] == f"arn:aws:dynamodb:{env.region}:{env.account}:table/*"
                assert table["Condition"] == {
                    "StringEquals": {"aws:PrincipalAccount": env.account, "aws:ResourceAccount": env.account}
                }
            elif endpoint["Properties"].get("VpcEndpointType") == "Gateway":
                resources = [r for s in statements for r in inv.as_list(s["Resource"])]
                assert all(
                    r.startswith(f"arn:aws:s3:::mlops-{name}-")
                    or r == f"arn:aws:s3:::cdk-hnb659fds-assets-{env.account}-{env.region}/*"
                    or r == f"arn:aws:s3:::prod-{env.region}-starport-layer-bucket/*"
                    for r in resources
                ), resources
                project = next(s for s in statements if s["Sid"] == "ProjectBucketsInThisAccount")
                assert project["Condition"] == {"StringEquals": {"aws:ResourceAccount": env.account}}
            else:
                for s in statements:
                    assert s["Condition"] == {"StringEquals": {"aws:PrincipalAccount": env.account}}, s


def test_sagemaker_egress_reaches_only_endpoints_and_s3(pipeline_synth, environments_synth):
    for synth in (pipeline_synth, environments_synth):
        for name, stage in _stages(synth).items():
            env = synth.config.environment(name)
            template = synth.template(stage.network).to_json()["Resources"]
            rules = [
                r["Properties"] for r in template.values() if r["Type"] == "AWS::EC2::SecurityGroupEgress"
            ]
            for group in (r for r in template.values() if r["Type"] == "AWS::EC2::SecurityGroup"):
                rules += group["Properties"].get("SecurityGroupEgress", [])
            assert rules
            for rule in rules:
                if "CidrIp" in rule:  # CDK's "no egress at all" placeholder on a closed group
                    assert rule["CidrIp"] == "255.255.255.255/32", rule
            prefix_lists = {r.get("DestinationPrefixListId") for r in rules} - {None}
            assert prefix_lists == {env.vpc.s3_prefix_list_id}


def test_every_log_group_is_declared_encrypted_with_the_configured_retention(pipeline_synth, delivery):
    for name, stage in _stages(pipeline_synth).items():
        env = pipeline_synth.config.environment(name)
        names = set()
        for stack in _stacks(stage):
            resources = pipeline_synth.template(stack).to_json()["Resources"]
            groups = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
            for group in groups:
                assert "KmsKeyId" in group and group["RetentionInDays"] == env.retention.log_days, group
                names.add(inv.text(group["LogGroupName"]))
            # Every Lambda function has its log group declared: CDK's custom resources by the name
            # Lambda would give it (/aws/lambda/<function>), the project's own through LoggingConfig.
            declared = {k for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
            for logical_id, resource in resources.items():
                if resource["Type"] == "AWS::Lambda::Function":
                    logging = resource["Properties"].get("LoggingConfig", {}).get("LogGroup", {})
                    named = logging.get("Ref") in declared if isinstance(logging, dict) else False
                    assert named or json.dumps({"Ref": logical_id}) in json.dumps(groups), logical_id
        assert {
            "/aws/sagemaker/ProcessingJobs",
            "/aws/sagemaker/TrainingJobs",
            f"/mlops/{name}/vpc-flow-logs",
        } <= names
        # The project's own functions (monitoring launcher and publisher, retraining trigger, label
        # intake) log under the environment's prefix, which the logs key serves.
        functions = [n for n in names if n.startswith(f"/mlops/{name}/functions/")]
        assert len(functions) >= 3, names
    resources = pipeline_synth.template(delivery).to_json()["Resources"]
    (group_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"]
    assert "KmsKeyId" in resources[group_id]["Properties"]
    for project in (r for r in resources.values() if r["Type"] == "AWS::CodeBuild::Project"):
        assert project["Properties"]["LogsConfig"]["CloudWatchLogs"]["GroupName"] == {"Ref": group_id}


def test_logs_key_serves_only_the_projects_log_groups(pipeline_synth, dev_stage):
    resources = pipeline_synth.template(dev_stage.data).to_json()["Resources"]
    keys = [
        r["Properties"]["KeyPolicy"]["Statement"] for r in resources.values() if r["Type"] == "AWS::KMS::Key"
    ]
    assert len(keys) == 2
    logs = [s for key in keys for s in key if "logs." in json.dumps(s.get("Principal"))]
    (logs_statement,) = logs  # one key serves CloudWatch Logs, the data key does not
    arns = logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert all(re.match(r"arn:aws:logs:eu-west-1:111111111111:log-group:/(mlops/dev/|aws/)", a) for a in arns)
    assert not [a for a in arns if a.endswith("log-group:*")]
    for key in keys:
        # No kms:* for the account: administration and use are split.
        assert not [s for s in key if "kms:*" in inv.as_list(s["Action"])]
        (admin,) = [s for s in key if s.get("Sid") == "KeyAdministrationNotUse"]
        assert "kms:Decrypt" not in admin["Action"] and "kms:PutKeyPolicy" in admin["Action"]
        assert "cdk-hnb659fds-cfn-exec-role-111111111111-eu-west-1" in json.dumps(admin["Principal"])


def test_buckets_refuse_old_tls_and_uploads_not_encrypted_with_the_project_key(pipeline_synth, dev_stage):
    resources = pipeline_synth.template(dev_stage.data).to_json()["Resources"]
    buckets = {k: r for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}
    policies = {
        r["Properties"]["Bucket"]["Ref"]: r
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
    }
    assert set(policies) == set(buckets)
    for logical_id, bucket in buckets.items():
        statements = policies[logical_id]["Properties"]["PolicyDocument"]["Statement"]
        assert any(s.get("Condition") == {"NumericLessThan": {"s3:TlsVersion": 1.2}} for s in statements), (
            logical_id
        )
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        assert all(
            r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 2) > 1 or "ExpirationInDays" in r
            for r in rules
        )
        sse = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        if sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms":
            denies = {s["Sid"] for s in statements if s["Effect"] == "Deny" and s["Action"] == "s3:PutObject"}
            assert denies == {
                "DenyUploadsWithAnotherAlgorithm",
                "DenyUploadsWithAnotherKey",
                "DenyUploadsWithTheAwsManagedKey",
            }, logical_id


def test_every_acknowledgement_matches_a_finding(pipeline_synth, environments_synth, bootstrap_synth):
    """An acknowledgement that suppresses nothing hides nothing today but would silence a real
    finding tomorrow; each must match a finding on its own construct."""
    counts = {}
    for name, synth in (
        ("pipeline", pipeline_synth),
        ("environments", environments_synth),
        ("bootstrap", bootstrap_synth),
    ):
        made = _acknowledgements(synth)
        used = {
            (v["acknowledgedAt"], v["acknowledgedId"])
            for report in synth.validation_report["pluginReports"]
            for v in report["suppressedViolations"]
        }
        ours = [(path, rule) for path, rule in made if rule.startswith(PACKS)]
        assert ours and [a for a in ours if a not in used] == [], name
        counts[name] = len(ours)
    print(f"acknowledgements: {counts}")


def _acknowledgements(synth) -> list[tuple[str, str]]:
    """Every acknowledgement, as (construct path, rule), read from the metadata CDK writes for
    each stack (`<stack>.metadata.json`: every construct's metadata entries under its path)
    rather than by walking the construct tree through jsii, which costs seconds per synth."""
    found = []
    for template in synth.template_files:
        metadata = template.with_name(template.name.replace(".template.json", ".metadata.json"))
        for path, entries in json.loads(metadata.read_text()).items():
            for entry in entries:
                if entry["type"] == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    found += [(path.lstrip("/"), rule) for rule in entry["data"]]
    return found


def test_pipeline_buildspecs_pin_the_cli_versions(
    pipeline_synth, delivery, delivery_with_staging_and_self_mutation
):
    cli = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", cli) and re.fullmatch(r"\d+\.\d+\.\d+", CDK_ASSETS_VERSION)
    # The default: no self-mutation; asset publishing pins cdk-assets.
    installs = _installs(pipeline_synth.template(delivery).to_json())
    assert installs and set(installs) == {f"npm install -g cdk-assets@{CDK_ASSETS_VERSION}"}
    # With self-mutation on (an option; this config also has staging), it installs the pinned
    # CLI, and prod still waits for the approval.
    stack = delivery_with_staging_and_self_mutation
    template = Template.from_stack(stack).to_json()
    assert set(_installs(template)) == {
        f"npm install -g aws-cdk@{cli}",
        f"npm install -g cdk-assets@{CDK_ASSETS_VERSION}",
    }
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    names = [s["Name"] for s in pipeline["Properties"]["Stages"]]
    assert names == ["Source", "Build", "UpdatePipeline", "Assets", "Dev", "Staging", "Prod"]
    prod = pipeline["Properties"]["Stages"][-1]["Actions"]
    assert min(prod, key=lambda a: a["RunOrder"])["ActionTypeId"]["Category"] == "Approval"
    assert Stage.of(stack) is stack.node.root  # the stack at the app's root, in no stage


def _installs(template) -> list[str]:
    commands = []
    for project in (r for r in template["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project"):
        spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
        commands += spec["phases"].get("install", {}).get("commands", [])
    assert not [c for c in commands if re.search(r"@(latest|\d+)$", c)], commands
    return commands


def test_cfn_execution_policy_covers_what_the_stacks_declare(
    pipeline_synth, environments_synth, bootstrap_synth
):
    policies = {}
    for path in bootstrap_synth.template_files:
        (policy,) = [
            r
            for r in json.loads(path.read_text())["Resources"].values()
            if r["Type"] == "AWS::IAM::ManagedPolicy"
        ]
        policies[policy["Properties"]["ManagedPolicyName"]] = policy["Properties"]["PolicyDocument"][
            "Statement"
        ]
    assert set(policies) == {
        "mlops-dev-cfn-execution",
        "mlops-prod-cfn-execution",
        "mlops-delivery-cfn-execution",
    }
    for statements in policies.values():
        actions = [a for s in statements for a in inv.as_list(s["Action"])]
        assert "*" not in actions and not [a for a in actions if a.endswith(":*")]
        for s in statements:
            if any(a.startswith("iam:") for a in inv.as_list(s["Action"])):
                # The project's roles and policies, and the one service-linked role endpoint
                # autoscaling needs (CreateServiceLinkedRole only, for that service only).
                assert all(
                    re.search(r":(role|policy)/mlops-[a-z]+-\*$", r)
                    or r.endswith(":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/*")
                    for r in inv.as_list(s["Resource"])
                ), s

    # Every resource type a stack declares is a service the account's policy covers.
    def services(statements) -> set[str]:
        return {a.split(":")[0] for s in statements for a in inv.as_list(s["Action"])}

    for name, stage in _stages(pipeline_synth).items():
        covered = services(policies[f"mlops-{name}-cfn-execution"])
        for stack in _stacks(stage):
            for resource_type in {
                r["Type"] for r in pipeline_synth.template(stack).to_json()["Resources"].values()
            }:
                assert _service(resource_type) in covered | {None}, (name, resource_type)
    delivery = pipeline_synth.app.node.find_child("Delivery")
    covered = services(policies["mlops-delivery-cfn-execution"])
    for resource_type in {
        r["Type"] for r in pipeline_synth.template(delivery).to_json()["Resources"].values()
    }:
        assert _service(resource_type) in covered | {None}, resource_type


def _service(resource_type: str) -> str | None:
    """The IAM service prefix CloudFormation needs for a resource type (None: no AWS call)."""
    if resource_type == "AWS::CDK::Metadata":
        return None
    if resource_type.startswith("Custom::"):
        return "lambda"  # CloudFormation invokes the provider function
    service = resource_type.split("::")[1].lower()
    return {"applicationautoscaling": "application-autoscaling"}.get(service, service)


def test_code_owners_review_what_decides_what_reaches_prod():
    """The approval before prod lives in the delivery stack and is held by these tests; with
    self-mutation on, only review keeps a commit from removing it (README, Deploying)."""
    owners = (REPO_ROOT / ".github" / "CODEOWNERS").read_text()
    owned = {line.split()[0] for line in owners.splitlines() if line.strip() and not line.startswith("#")}
    assert {
        "/stacks/delivery_stack.py",
        "/config/",
        "/tests/test_cdk_pipeline.py",
        "/tests/test_cdk_hardening.py",
        "/tests/test_cdk_iam_inventory.py",
        "/.github/CODEOWNERS",
    } <= owned
