"""Every command ends a user-facing error with one clear message and exit code 2.

The message names the file, field or value and what is allowed; no traceback unless --debug.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_steps.common.contract import EXIT_INPUT, MAX_FAILURE_MESSAGE, write_failure
from workflow.datasets.__main__ import main as datasets_main
from workflow.definition.__main__ import main as definition_main
from workflow.demo import main as demo_main
from workflow.local_runner.__main__ import main as runner_main

REPO = Path(__file__).resolve().parents[1]


def _fails(capsys, main, argv, *needles):
    assert main(argv) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert err.count("error:") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_demo_names_the_bad_input(capsys, tmp_path):
    root = ["--root", str(tmp_path)]
    _fails(capsys, demo_main, [*root, "--spec", str(tmp_path / "nope.yaml")], "nope.yaml", "cannot read")
    _fails(capsys, demo_main, [*root, "--environment", "staging"], "'staging'", "['dev', 'prod']")
    _fails(capsys, demo_main, [*root, "--data", str(tmp_path / "x.csv")], "--data", "x.csv", "CSV or Parquet")
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text(
        (REPO / "workflow" / "specs" / "merchant_credit.yaml").read_text().replace("max: 850", "max: x")
    )
    _fails(capsys, demo_main, [*root, "--spec", str(bad_spec)], "bad.yaml", "max")


def test_debug_shows_the_traceback_too(capsys, tmp_path):
    assert demo_main(["--root", str(tmp_path), "--environment", "staging", "--debug"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "Traceback" in err and "error: --environment 'staging'" in err


def test_definition_cli(capsys):
    _fails(capsys, definition_main, ["--environment", "qa"], "--environment 'qa'", "expected one of")
    _fails(capsys, definition_main, ["--spec", "missing.yaml"], "missing.yaml")


def test_local_runner_cli(capsys, tmp_path):
    root = ["--root", str(tmp_path)]
    spec = str(REPO / "workflow" / "specs" / "merchant_credit.yaml")
    _fails(capsys, runner_main, [*root, "run", "--definition", "none.json", "--spec", spec], "--definition")
    broken = tmp_path / "d.json"
    broken.write_text("{not json")
    _fails(capsys, runner_main, [*root, "run", "--definition", str(broken), "--spec", spec], "not valid JSON")
    broken.write_text('{"Version": "2020-12-01", "Parameters": [], "Steps": []}')
    _fails(
        capsys,
        runner_main,
        [*root, "run", "--definition", str(broken), "--spec", spec, "--param", "AucFloor"],
        "--param 'AucFloor'",
        "NAME=VALUE",
    )
    _fails(
        capsys,
        runner_main,
        [*root, "run", "--definition", str(broken), "--spec", spec, "--param", "AucFloor=0.9"],
        "unknown pipeline parameter(s) ['AucFloor']",
    )
    _fails(capsys, runner_main, [*root, "registry", "approve", "g", "7"], "'g' has no version 7")


def test_datasets_cli(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:  # argparse's own usage errors are exit code 2 too
        datasets_main(["--out", str(tmp_path), "--rows", "0"])
    assert exit_.value.code == EXIT_INPUT
    assert "--rows and --parts must be at least 1" in capsys.readouterr().err


def test_a_step_process_fails_with_one_message_and_exit_code_2(tmp_path):
    env = {**os.environ, "OPT_ML_ROOT": str(tmp_path), "PYTHONPATH": str(REPO)}
    args = ["--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_steps.evaluate", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_INPUT, done.stderr
    assert f"evaluation failed: model: {tmp_path / 'no-model'} does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "output" / "message").read_text().startswith("model:")


def test_a_step_shows_the_traceback_with_debug(tmp_path, monkeypatch, capsys):
    from pipeline_steps.evaluate.__main__ import main as evaluate_main

    monkeypatch.setenv("OPT_ML_ROOT", str(tmp_path))
    args = ["--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "out"), "--debug"]
    assert evaluate_main(args) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "Traceback" in err and "evaluation failed: model:" in err


def test_failure_message_keeps_sagemakers_limit(tmp_path, capsys):
    path = tmp_path / "output" / "failure"
    write_failure("training", "x" * 5000, path)
    assert len(path.read_text()) == MAX_FAILURE_MESSAGE
    assert "training failed: " in capsys.readouterr().err
    write_failure("training", "unwritable", tmp_path / "output" / "failure" / "below-a-file")  # never raises
