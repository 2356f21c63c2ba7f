"""The closed loop on this machine: late labels, the monitor run over the local capture
prefix, and the retraining trigger (the Lambda's own code, with a file store for its cooldown
and trigger log, and the local pipeline runner as the pipeline it starts)."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pipeline_steps.common.atomic import write_text
from workflow.functions.retraining_trigger.handler import Decision, handle
from workflow.monitoring.capture_files import ground_truth_line, hour_path


def deliver_labels(
    prefix: Path,
    keys: Sequence[str | None],
    outcomes: Sequence[float],
    *,
    share: float,
    seed: int,
    arrived: datetime,
) -> int:
    """Late labels for a random `share` of the invocations (all records of each), in Model
    Monitor's ground-truth format; returns how many records got a label."""
    events: dict[str, list[tuple[int, float]]] = {}
    for key, outcome in zip(keys, outcomes, strict=True):
        if key is None:  # refused by the endpoint: nothing was captured, nothing to label
            continue
        event, _, index = key.partition("#")
        events.setdefault(event, []).append((int(index or 0), float(outcome)))
    # an invocation is labeled whole (one label per record), so only when every outcome is known
    events = {e: v for e, v in events.items() if all(o == o for _, o in v)}
    rng = np.random.default_rng(seed)
    chosen = [e for e in events if rng.random() < share]
    lines = [ground_truth_line(e, ",".join(str(int(v)) for _, v in sorted(events[e]))) for e in chosen]
    write_text(hour_path(prefix, arrived) / f"labels-{arrived:%Y%m%d%H%M%S}.jsonl", "\n".join(lines) + "\n")
    return sum(len(events[e]) for e in chosen)


def run_monitor(repo_root: Path, arguments: list[str], log: Path) -> dict[str, Any]:
    """The monitor step as a process, as the processing job runs it; returns its summary."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_steps.monitor", *arguments],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"the monitor failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    output = Path(arguments[arguments.index("--output") + 1])
    return json.loads((output / "summary.json").read_text())


class FileStore:
    """The trigger Lambda's store on disk: the cooldown claim under a file lock, the trigger log
    as JSON Lines."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.state = folder / "cooldown.json"
        self.log = folder / "triggers.jsonl"

    def claim(self, now: datetime, cooldown: timedelta) -> datetime | None:
        with (self.folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            last = json.loads(self.state.read_text())["started_at"] if self.state.exists() else None
            if last and datetime.fromisoformat(last) >= now - cooldown:
                return datetime.fromisoformat(last)
            write_text(self.state, json.dumps({"started_at": now.isoformat()}))
            return None

    def release(self, previous: datetime | None) -> None:
        self.state.unlink(missing_ok=True)

    def record(self, item: dict[str, Any]) -> None:
        with self.log.open("a") as handle:
            handle.write(json.dumps(item) + "\n")


class LocalStarter:
    """Starts the local pipeline run (the model-building pipeline) with the trigger's reason."""

    def __init__(self, run: Callable[[str], str]) -> None:
        self.run = run

    def start(self, reason: str, token: str) -> str:
        return self.run(reason)


def trigger(
    event: dict[str, Any], store: FileStore, starter: LocalStarter, cooldown_hours: float, now: datetime
) -> Decision:
    return handle(event, store, starter, timedelta(hours=cooldown_hours), now)
