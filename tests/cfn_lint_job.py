"""cfn-lint over the shared synths' templates, in a background process.

Linting the ~38 templates takes ~20 s of one core, and the synths exist long before the suite
ends: tests/conftest.py starts this linter (at the lowest priority) as soon as all four are
synthesized, the other tests run meanwhile, and test_cdk_cfn_lint (ordered last) collects the
findings.
Run as a script, it lints the templates named in its JSON request and writes the findings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def lint_inputs(
    pipeline: Any, environments: Any, serving: Any, bootstrap: Any
) -> tuple[list[Path], list[str]]:
    """The templates to lint (every one of the synths, but only the serving config's serving
    stacks: its other stacks are the same kinds as the two others') and every region in use."""
    serving_stacks = [f for f in serving.template_files if "Serving" in f.name]
    files = pipeline.template_files + environments.template_files + serving_stacks + bootstrap.template_files
    regions = sorted({e.region for s in (pipeline, environments, serving) for e in s.config.environments})
    return files, regions


class CfnLintJob:
    """One linter process over `files`, started now; `findings()` waits for its answer."""

    def __init__(self, files: list[Path], regions: list[str]) -> None:
        self.files = files
        folder = Path(tempfile.mkdtemp(prefix="cfn-lint-"))
        self.output = folder / "findings.json"
        request = folder / "request.json"
        request.write_text(json.dumps({"templates": [str(f) for f in files], "regions": regions}))
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(request), str(self.output)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def findings(self, timeout: float = 900) -> list[str]:
        log, _ = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0, f"cfn-lint process failed:\n{log[-3000:]}"
        return json.loads(self.output.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def main(request_file: str, output_file: str) -> None:
    # Lowest priority: the linter takes only CPU time the tests leave idle.  At equal priority
    # it would take a core from XGBoost's threads, whose every barrier then waits a time slice
    # (a 0.4 s training test took 17 s).
    os.nice(19)
    from cfnlint.api import ManualArgs, lint_by_config

    request = json.loads(Path(request_file).read_text())
    # Informational rules too: I3510 (an action's service prefix against its resource's) holds
    # the connection permission in the connection's own prefix.
    matches = lint_by_config(
        ManualArgs(
            templates=request["templates"],
            ignore_checks=IGNORED_RULES,
            include_checks=["I"],
            regions=request["regions"],
        )
    )
    findings = [f"{Path(m.filename).name}: {m.rule.id} {m.message}" for m in matches]
    Path(output_file).write_text(json.dumps(findings))


if __name__ == "__main__":
    main(*sys.argv[1:3])
