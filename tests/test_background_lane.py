"""The tests of tests/lane/ pass: they run in the background lane (tests/background_jobs.py, job
`lane-tests`), in a pytest process of their own beside the rest of the suite."""

from __future__ import annotations

import re
from pathlib import Path

LANE = Path(__file__).parent / "lane"


def test_every_lane_test_ran_and_passed(lane_tests):
    assert lane_tests["code"] == 0, lane_tests["output"][-6000:]
    sources = [path.read_text() for path in LANE.glob("test_*.py")]
    defined = {name for text in sources for name in re.findall(r"^def (test_\w+)", text, re.M)}
    ran = {re.sub(r"\[.*\]$", "", name) for name, _ in lane_tests["cases"]}
    assert defined and ran == defined, f"defined {sorted(defined)}, ran {sorted(ran)}"
    failed = [(name, outcome) for name, outcome in lane_tests["cases"] if outcome != "passed"]
    assert not failed, lane_tests["output"][-6000:]
