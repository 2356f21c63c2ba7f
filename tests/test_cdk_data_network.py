"""Fine-grained checks of the data and network stacks (from the one shared pipeline synth)."""

from aws_cdk.assertions import Match

DATA_BUCKETS = ("raw", "curated", "artifacts", "capture", "monitoring")


def _data(pipeline_synth, dev_stage):
    return pipeline_synth.template(dev_stage.data)


def _bucket(template, name):
    found = template.find_resources("AWS::S3::Bucket", {"Properties": {"BucketName": name}})
    assert len(found) == 1, name
    return next(iter(found.items()))


def test_key_rotates_and_is_retained(pipeline_synth, dev_stage):
    t = _data(pipeline_synth, dev_stage)
    t.has_resource("AWS::KMS::Key", {"Properties": {"EnableKeyRotation": True}, "DeletionPolicy": "Retain"})
    t.has_resource_properties("AWS::KMS::Alias", {"AliasName": "alias/mlops-dev-data"})


def test_data_buckets_are_encrypted_with_the_cmk_versioned_private_and_logged(pipeline_synth, dev_stage):
    t = _data(pipeline_synth, dev_stage)
    key_id = next(iter(t.find_resources("AWS::KMS::Key")))
    logs_id, _ = _bucket(t, "mlops-dev-access-logs-111111111111-eu-west-1")
    for purpose in DATA_BUCKETS:
        name = f"mlops-dev-{purpose}-111111111111-eu-west-1"
        logical_id, bucket = _bucket(t, name)
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == "Retain"
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]
        assert sse == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]}}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
        t.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": logical_id},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Principal": {"AWS": "*"},
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_capture_and_monitoring_expire_per_config(pipeline_synth, dev_stage):
    t = _data(pipeline_synth, dev_stage)
    retention = pipeline_synth.config.environment("dev").retention
    for purpose, days in (("capture", retention.capture_days), ("monitoring", retention.monitoring_days)):
        _, bucket = _bucket(t, f"mlops-dev-{purpose}-111111111111-eu-west-1")
        rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-after-retention"]["ExpirationInDays"] == days
        assert rules["expire-after-retention"]["Status"] == "Enabled"
    _, raw = _bucket(t, "mlops-dev-raw-111111111111-eu-west-1")
    rules = {r["Id"]: r for r in raw["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"abort-incomplete-uploads", "expire-old-versions"}
    assert "ExpirationInDays" not in rules["expire-old-versions"]  # current raw data never expires
    assert (
        rules["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"]
        == retention.noncurrent_version_days
    )


def test_replication_is_a_per_environment_option(pipeline_synth, dev_stage, environments_synth):
    dev = _data(pipeline_synth, dev_stage)
    assert not any(
        "ReplicationConfiguration" in b["Properties"] for b in dev.find_resources("AWS::S3::Bucket").values()
    )
    staging = environments_synth.app.node.find_child("Staging")
    t = environments_synth.template(staging.data)
    for purpose in ("raw", "curated", "artifacts"):
        _, bucket = _bucket(t, f"mlops-staging-{purpose}-333333333333-eu-central-1")
        rule = bucket["Properties"]["ReplicationConfiguration"]["Rules"][0]
        assert (
            rule["Status"] == "Enabled"
            and rule["SourceSelectionCriteria"]["SseKmsEncryptedObjects"]["Status"] == "Enabled"
        )
        _bucket(t, f"mlops-staging-{purpose}-replica-333333333333-eu-central-1")


def test_vpc_is_private_isolated_with_endpoints_and_flow_logs(pipeline_synth, dev_stage):
    t = pipeline_synth.template(dev_stage.network)
    t.resource_count_is("AWS::EC2::InternetGateway", 0)
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::Subnet", pipeline_synth.config.environment("dev").vpc.max_azs)
    t.all_resources_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": False})
    services = {
        e["Properties"]["ServiceName"] if isinstance(e["Properties"]["ServiceName"], str) else "s3-gateway"
        for e in t.find_resources("AWS::EC2::VPCEndpoint").values()
    }
    region = "eu-west-1"
    expected = {
        f"com.amazonaws.{region}.{s}"
        for s in (
            "sagemaker.api",
            "sagemaker.runtime",
            "sagemaker.featurestore-runtime",  # the IngestFeatures step
            "ecr.api",
            "ecr.dkr",
            "logs",
            "monitoring",
            "sts",
            "kms",
        )
    }
    assert services == expected | {"s3-gateway"}
    t.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Gateway",
            "ServiceName": {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]},
        },
    )
    t.all_resources_properties("AWS::EC2::VPCEndpoint", Match.any_value())
    for endpoint in t.find_resources(
        "AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}}
    ).values():
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True
    t.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )
    t.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "/mlops/dev/vpc-flow-logs",
            "KmsKeyId": Match.any_value(),
            "RetentionInDays": pipeline_synth.config.environment("dev").retention.log_days,
        },
    )


def test_no_security_group_is_open_to_the_world(pipeline_synth, dev_stage):
    t = pipeline_synth.template(dev_stage.network)
    ingress = [r["Properties"] for r in t.find_resources("AWS::EC2::SecurityGroupIngress").values()]
    for sg in t.find_resources("AWS::EC2::SecurityGroup").values():
        ingress += sg["Properties"].get("SecurityGroupIngress", [])
    assert ingress, "expected the self-referencing and endpoint rules"
    for rule in ingress:
        assert "CidrIp" not in rule and "CidrIpv6" not in rule, rule
        assert "SourceSecurityGroupId" in rule


def test_imported_vpc_makes_no_vpc_and_no_lookup(environments_synth):
    staging = environments_synth.app.node.find_child("Staging")
    t = environments_synth.template(staging.network)
    t.resource_count_is("AWS::EC2::VPC", 0)
    t.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    t.has_resource_properties("AWS::EC2::SecurityGroup", {"VpcId": "vpc-0123456789abcdef0"})
    assert '"missing"' not in (environments_synth.outdir / "manifest.json").read_text()


def test_pipeline_synth_needs_no_lookups(pipeline_synth):
    for manifest in [
        pipeline_synth.outdir / "manifest.json",
        *pipeline_synth.outdir.glob("assembly-*/manifest.json"),
    ]:
        assert '"missing"' not in manifest.read_text(), manifest
