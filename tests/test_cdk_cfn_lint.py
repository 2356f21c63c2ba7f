"""cfn-lint on every synthesized template of the shared synths, stage assemblies (assembly-*/)
included, in one linter run (rule loading dominates the cost)."""

from pathlib import Path

from cfnlint.api import ManualArgs, lint_by_config

# Warnings that come only from CDK-generated constructs, never from this project's own settings.
IGNORED_RULES = [
    # W3005: CDK (pipeline role, the default-security-group custom resource) adds a DependsOn
    # that cfn-lint finds redundant next to a GetAtt; harmless ordering.
    "W3005",
    # W3010: ec2.Vpc writes literal zone names for a stack with a known region; the project gives
    # them explicitly (config) so that synth needs no availability-zone lookup.
    "W3010",
]


def test_cfn_lint_every_template(pipeline_synth, environments_synth, serving_synth):
    synths = (pipeline_synth, environments_synth, serving_synth)
    # The serving config's other stacks are the same kinds as the two synths' own: lint only
    # its serving stacks (one per endpoint kind), as rule loading and checks scale with files.
    serving = [f for f in serving_synth.template_files if "Serving" in f.name]
    files = pipeline_synth.template_files + environments_synth.template_files + serving
    assert len(pipeline_synth.template_files) == 1 + 5 * 2  # delivery + 5 stacks x (dev, prod)
    assert len(environments_synth.template_files) == 5 * 3  # 5 stacks x (dev, staging, prod)
    assert len(serving) == 4  # one serving stack per environment of the serving config
    regions = sorted({e.region for s in synths for e in s.config.environments})
    matches = lint_by_config(
        ManualArgs(templates=[str(f) for f in files], ignore_checks=IGNORED_RULES, regions=regions)
    )
    assert [f"{Path(m.filename).name}: {m.rule.id} {m.message}" for m in matches] == []
