"""Snapshot of the dev data stack: any change to it shows up as a reviewed diff.

The snapshot is written only on request, after an intended change:
    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_cdk_snapshot.py
A missing snapshot fails the test: a check that writes its own expectation checks nothing.
"""

import json
import os
import re
from pathlib import Path

import pytest

SNAPSHOT = Path(__file__).parent / "snapshots" / "data_stack_dev.json"
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def _masked(text: str) -> str:
    return _ASSET_HASH.sub("<asset-hash>", json.dumps(json.loads(text), indent=1, sort_keys=True)) + "\n"


UPDATE = "UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_cdk_snapshot.py"


def check_snapshot(current: str, snapshot: Path, *, update: bool) -> None:
    """Writes the snapshot only when asked; otherwise compares, and a missing file fails."""
    if update:
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(current)
    if not snapshot.exists():
        pytest.fail(f"snapshot {snapshot.name} is missing; review the stack, then write it with {UPDATE}")
    assert current == snapshot.read_text(), f"the dev data stack changed; review, then {UPDATE}"


def test_data_stack_snapshot(pipeline_synth, dev_stage):
    current = _masked(pipeline_synth.json(dev_stage.data))
    check_snapshot(current, SNAPSHOT, update=os.environ.get("UPDATE_SNAPSHOTS") == "1")


def test_a_missing_snapshot_fails_and_is_not_written(tmp_path):
    missing = tmp_path / "snapshots" / "stack.json"
    with pytest.raises(pytest.fail.Exception, match="is missing"):
        check_snapshot("{}\n", missing, update=False)
    assert not missing.exists()
    with pytest.raises(AssertionError, match="changed"):
        check_snapshot("{}\n", SNAPSHOT, update=False)
    check_snapshot("{}\n", missing, update=True)
    assert missing.read_text() == "{}\n"
