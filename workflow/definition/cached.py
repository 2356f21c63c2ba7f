"""The definition, built once per distinct input and then read back: a content-addressed cache.

Building takes seconds (the SageMaker SDK alone takes about four to import); synth and
`make demo` need the same JSON again and again.  The key is everything the JSON depends on:
the builder's source, the SDK's version, the spec's text and the settings.  Any change to one
of them is a new key, so a cached definition is always byte-identical to a fresh build (the
tests compare the two).  Set DEFINITION_CACHE=off to always build.

`definition_text` is the one entry point for everything that deploys or runs the definition
(the CDK stack, `make demo`, the CLI): it also remembers each definition for the life of the
process, since one synth builds the same environment's definition more than once (the delivery
pipeline and `-c target=environments` share it; the tests synthesize both).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from config import REPO_ROOT
from pipeline_steps.common.atomic import write_text
from pipeline_steps.common.feature_spec import FeatureSpec
from workflow.definition.settings import PipelineSettings

DEFAULT_DIR = REPO_ROOT / ".cache" / "definitions"
# The code the JSON is made from.
_SOURCES = (
    REPO_ROOT / "workflow" / "definition",
    REPO_ROOT / "pipeline_steps" / "train" / "objective.py",
    REPO_ROOT / "pipeline_steps" / "train" / "hyperparameters.py",
    REPO_ROOT / "pipeline_steps" / "common" / "contract.py",
)


def cache_key(spec: FeatureSpec, settings: PipelineSettings) -> str:
    h = hashlib.sha256()
    for source in _SOURCES:
        files = sorted(source.rglob("*.py")) + sorted(source.rglob("*.json")) if source.is_dir() else [source]
        for path in files:
            h.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    for package in ("sagemaker", "sagemaker-core", "sagemaker-mlops", "sagemaker-train"):
        h.update(f"{package}=={metadata.version(package)}".encode())
    h.update(spec.source_text.encode())
    h.update(json.dumps(asdict(settings), sort_keys=True).encode())
    return h.hexdigest()


def definition_text(spec: FeatureSpec, settings: PipelineSettings, *, cache_dir: Path | None = None) -> str:
    """build_definition(spec, settings), checked against the schema; from this process's memory
    or the on-disk cache when it was built (and checked) before.  The schema and its checker
    are part of the key."""
    if os.environ.get("DEFINITION_CACHE", "").lower() in ("off", "0", "false"):
        return _build_and_check(spec, settings)
    folder = cache_dir or DEFAULT_DIR
    memo_key = (spec.source_text, repr(settings), folder)
    if memo_key not in _IN_PROCESS:
        path = folder / f"{cache_key(spec, settings)}.json"
        if path.exists():
            _IN_PROCESS[memo_key] = path.read_text()
        else:
            text = _build_and_check(spec, settings)
            write_text(path, text)
            _IN_PROCESS[memo_key] = text
    return _IN_PROCESS[memo_key]


_IN_PROCESS: dict[tuple[str, str, Path], str] = {}


def _build_and_check(spec: FeatureSpec, settings: PipelineSettings) -> str:
    from workflow.definition.build import build_definition
    from workflow.definition.schema_check import validate_definition

    text = build_definition(spec, settings)
    validate_definition(json.loads(text))
    return text
