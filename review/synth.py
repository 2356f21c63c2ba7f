"""Synthesize the app at a git ref (in a temporary `git worktree`, sharing this checkout's
`.venv` and `node_modules`) or in the working tree, with the pinned CDK CLI, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from config.paths import REPO_ROOT
from pipeline_steps.common.contract import InputError

CONFIG_FILE = Path("config") / "environments.yaml"
SHARED = (".venv", "node_modules")


class SynthError(InputError):
    """A ref that does not resolve, or a synth that wrote no assembly (its error is in the message)."""


@dataclass
class SynthResult:
    assembly: Path
    raw_config: dict[str, Any] | None
    label: str
    gate_failed: bool  # cdk synth exited non-zero but wrote the assembly (cdk-nag findings)


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SynthError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def default_base(repo: Path = REPO_ROOT) -> str:
    """The merge base with main (origin/main first, as in CI)."""
    for main in ("origin/main", "main"):
        try:
            return git(repo, "merge-base", "HEAD", main)
        except SynthError:
            continue
    raise SynthError("no merge base with origin/main or main: give --base REF or --base-assembly DIR")


def synth_command(tree: Path, outdir: Path, repo: Path) -> tuple[list[str], dict[str, str]]:
    venv_bin = repo / ".venv" / "bin"
    if not venv_bin.is_dir():
        venv_bin = Path(sys.executable).parent
    path = os.pathsep.join([str(venv_bin), str(repo / "node_modules" / ".bin"), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "CDK_DISABLE_VERSION_CHECK": "1", "CDK_CLI_NOTICES": "false"}
    cdk = shutil.which("cdk", path=path)
    if cdk is None:
        raise SynthError("the pinned CDK CLI is missing (node_modules/.bin/cdk): run `make setup`")
    return [cdk, "synth", "--quiet", "--no-notices", "--output", str(outdir)], env


def start_synth(tree: Path, outdir: Path, repo: Path) -> subprocess.Popen[str]:
    cmd, env = synth_command(tree, outdir, repo)
    return subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_synth(proc: subprocess.Popen[str], outdir: Path, label: str, raw_config: Any) -> SynthResult:
    _out, err = proc.communicate()
    if not (outdir / "manifest.json").is_file():
        raise SynthError(f"cdk synth of {label} failed (exit {proc.returncode}):\n{err.strip()[-3000:]}")
    return SynthResult(outdir, raw_config, label, gate_failed=proc.returncode != 0)


def read_config(path: Path) -> dict[str, Any] | None:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def synth_both(
    base_ref: str | None, workdir: Path, repo: Path = REPO_ROOT, *, head: bool = True
) -> tuple[SynthResult | None, SynthResult | None]:
    """Synthesize the base ref (in a temporary worktree) and the working tree, in parallel."""
    jobs: list[tuple[subprocess.Popen[str], Path, str, Any]] = []
    cleanup: list[Callable[[], None]] = []
    try:
        if base_ref is not None:
            sha = git(repo, "rev-parse", "--verify", f"{base_ref}^{{commit}}")
            tree = Path(tempfile.mkdtemp(prefix="review-base-", dir=workdir))
            tree.rmdir()
            git(repo, "worktree", "add", "--detach", "--quiet", str(tree), sha)
            cleanup.append(lambda: _remove_worktree(repo, tree))
            for name in SHARED:  # the same pinned tools on both sides
                if (repo / name).exists():
                    (tree / name).symlink_to((repo / name).resolve(), target_is_directory=True)
            out = workdir / "base.out"
            label = f"{base_ref} ({sha[:10]})" if not sha.startswith(base_ref) else sha[:10]
            jobs.append((start_synth(tree, out, repo), out, label, read_config(tree / CONFIG_FILE)))
        if head:
            out = workdir / "head.out"
            jobs.append((start_synth(repo, out, repo), out, "working tree", read_config(repo / CONFIG_FILE)))
        results = [finish_synth(*job) for job in jobs]
    finally:
        for step in cleanup:
            step()
    base = results.pop(0) if base_ref is not None else None
    return base, (results.pop(0) if head else None)


def _remove_worktree(repo: Path, tree: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(tree)], cwd=repo, capture_output=True, check=False
    )
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True, check=False)
