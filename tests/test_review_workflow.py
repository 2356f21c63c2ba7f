"""The sample CI workflow is lint-clean (actionlint, with its shellcheck-free checks) and runs the
README's command."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "review.yml"


def actionlint() -> str:
    found = Path(sys.executable).parent / "actionlint"
    return str(found) if found.is_file() else shutil.which("actionlint") or "actionlint"


def test_workflow_is_actionlint_clean():
    proc = subprocess.run([actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: ${{ github.nope }}"))
    proc = subprocess.run([actionlint(), "-no-color", str(broken)], capture_output=True, text=True)
    assert proc.returncode == 1 and "nope" in proc.stdout


def test_workflow_uses_the_readme_command():
    text = WORKFLOW.read_text()
    assert 'make review BASE="$BASE_SHA" REVIEW_OUT=review.md REVIEW_DIR=review-stages' in text
    assert "make review BASE=" in (REPO_ROOT / "README.md").read_text()
    # One comment per stage, found again by the marker each stage report starts with.
    assert 'readdirSync("review-stages")' in text and "startsWith(marker)" in text


def test_unknown_base_ref_is_a_clear_error(tmp_path, capsys):
    from review.__main__ import main as review_main

    assert review_main(["--base", "no-such-ref-anywhere"]) == 2  # an input error, one line
    err = capsys.readouterr().err
    assert "no-such-ref-anywhere" in err and err.startswith("error: git rev-parse") and "Traceback" not in err
    # No worktree is left behind.
    listed = subprocess.run(["git", "worktree", "list"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    assert "review-base-" not in listed
