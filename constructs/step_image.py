"""The container image of one pipeline step, as a CDK Docker image asset."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets

from constructs import Construct

# What every step image copies besides its own folders (see containers/<step>/Dockerfile).
_SHARED_CODE = ("pipeline_steps/__init__.py", "pipeline_steps/common")


class StepImage(Construct):
    """`containers/<step>/Dockerfile` built with the repository root as its context, for
    linux/amd64 (SageMaker's instances).

    The build context is what the root `.dockerignore` lets through (CDK reads it), narrowed
    further to what this step's Dockerfile copies: the shared step code and this step's own
    folders.  So the asset hash, and with it the image tag in the pipeline definition, changes
    only when this step's code or its Dockerfile does; the other steps keep their cached results.

    Exposes `asset` (an `ecr_assets.DockerImageAsset`; `asset.repository.grant_pull(...)` lets a
    role pull it), `image_uri` and `step`.
    """

    def __init__(self, scope: Construct, id: str, *, step: str, repo_root: Path) -> None:
        super().__init__(scope, id)
        dockerfile = Path("containers") / step / "Dockerfile"
        if not (repo_root / dockerfile).is_file():
            raise ValueError(f"StepImage: step {step!r} has no {dockerfile} under the repository root")
        self.step = step
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(repo_root),
            file=dockerfile.as_posix(),
            platform=ecr_assets.Platform.LINUX_AMD64,
            ignore_mode=IgnoreMode.DOCKER,
            exclude=step_context_exclusions(step, repo_root),
            display_name=f"{step} step image",
        )
        self.image_uri = self.asset.image_uri


def step_context_exclusions(step: str, repo_root: Path) -> list[str]:
    """Docker-ignore patterns, applied after the root .dockerignore: keep only this step's
    folders and the shared code, then drop generated files again (a re-included folder would
    otherwise bring its __pycache__ back)."""
    narrow = [
        "pipeline_steps/*",
        *(f"!{path}" for path in _SHARED_CODE),
        f"!pipeline_steps/{step}",
        "containers/*",
        f"!containers/{step}",
    ]
    dockerignore = (repo_root / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in dockerignore]
    generated = [p for p in patterns if p and not p.startswith(("#", "!")) and p != "*"]
    return narrow + generated
