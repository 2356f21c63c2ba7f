"""Snapshot of the dev data stack: any change to it shows up as a reviewed diff.

Update after an intended change:  UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_cdk_snapshot.py
"""

import json
import os
import re
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "data_stack_dev.json"
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def _masked(text: str) -> str:
    return _ASSET_HASH.sub("<asset-hash>", json.dumps(json.loads(text), indent=1, sort_keys=True)) + "\n"


def test_data_stack_snapshot(pipeline_synth, dev_stage):
    current = _masked(pipeline_synth.json(dev_stage.data))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text(), (
        "the dev data stack changed; review, then "
        "UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_cdk_snapshot.py"
    )
