"""cfn-lint on every synthesized template of the shared synths, stage assemblies (assembly-*/)
and the bootstrap policies included, informational rules too, in one linter run (rule loading
dominates the cost)."""

from pathlib import Path

from cfnlint.api import ManualArgs, lint_by_config

# Findings that come only from CDK-generated constructs or CDK's rendering, never from this
# project's own settings.
IGNORED_RULES = [
    # W3005: a DependsOn next to a GetAtt on the same resource.  Only CDK's own constructs add
    # one: CodePipeline on its role, and the VPC's default-security-group custom-resource
    # provider on its role (the project's stacks depend only on what they do not reference).
    "W3005",
    # W3010: ec2.Vpc writes literal zone names for a stack with a known region; the project gives
    # them explicitly (config) so that synth needs no availability-zone lookup.
    "W3010",
    # I1022: CDK renders string joins as Fn::Join with an empty delimiter, not Fn::Sub (style).
    "I1022",
]


def test_cfn_lint_every_template(pipeline_synth, environments_synth, serving_synth, bootstrap_synth):
    synths = (pipeline_synth, environments_synth, serving_synth)
    # The serving config's other stacks are the same kinds as the two synths' own: lint only
    # its serving stacks (one per endpoint kind), as rule loading and checks scale with files.
    serving = [f for f in serving_synth.template_files if "Serving" in f.name]
    files = (
        pipeline_synth.template_files
        + environments_synth.template_files
        + serving
        + bootstrap_synth.template_files
    )
    assert len(pipeline_synth.template_files) == 1 + 6 * 2  # delivery + 6 stacks x (dev, prod)
    assert len(environments_synth.template_files) == 6 * 3  # 6 stacks x (dev, staging, prod)
    assert len(serving) == 4  # one serving stack per environment of the serving config
    assert len(bootstrap_synth.template_files) == 3  # dev, prod, tooling
    regions = sorted({e.region for s in synths for e in s.config.environments})
    # Informational rules too: I3510 (an action's service prefix against its resource's) holds
    # the connection permission in the connection's own prefix.
    matches = lint_by_config(
        ManualArgs(
            templates=[str(f) for f in files],
            ignore_checks=IGNORED_RULES,
            include_checks=["I"],
            regions=regions,
        )
    )
    assert [f"{Path(m.filename).name}: {m.rule.id} {m.message}" for m in matches] == []
