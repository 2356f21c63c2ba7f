"""cfn-lint on every synthesized template of the shared synths, stage assemblies (assembly-*/)
and the bootstrap policies included, informational rules too, in one linter run (rule loading
dominates the cost).  The run is a background process (tests/cfn_lint_job.py) that conftest
starts once the four synths exist; this test is ordered last and collects its findings."""

from cfn_lint_job import lint_inputs


def test_cfn_lint_every_template(
    pipeline_synth, environments_synth, serving_synth, bootstrap_synth, cfn_lint
):
    files, _ = lint_inputs(pipeline_synth, environments_synth, serving_synth, bootstrap_synth)
    serving = [f for f in serving_synth.template_files if "Serving" in f.name]
    assert len(pipeline_synth.template_files) == 1 + 6 * 2  # delivery + 6 stacks x (dev, prod)
    assert len(environments_synth.template_files) == 6 * 3  # 6 stacks x (dev, staging, prod)
    assert len(serving) == 4 and set(serving) <= set(files)  # one serving stack per environment
    assert len(bootstrap_synth.template_files) == 3  # dev, prod, tooling
    job = cfn_lint()
    assert job.files == files  # the background run lints exactly these
    assert job.findings() == []
