"""Late ground-truth labels in Model Monitor's merge format, validated as they are read.

Where they go: `s3://<capture bucket>/ground-truth/<endpoint>/yyyy/mm/dd/hh/<file>.jsonl`
(the hour they arrived).  One JSON object per line:
`{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<the
capture's inferenceId, else its eventId>"}, "eventVersion": "0"}`.  `data` is the outcome
(`1` defaulted, `0` repaid; the spec's positive values are the positives); for an invocation
that scored several records it lists one label per record, comma separated, in order.
`encoding` may be CSV, JSON or BASE64.

Rejected lines are kept with their reason (the caller's `on_reject`) and counted; a label
given twice with the same value counts once, with different values both are rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.common.ground_truth import LabelError
from pipeline_steps.common.ground_truth import parse_line as parse_ground_truth


@dataclass
class LabelSet:
    labels: dict[str, float] = field(default_factory=dict)  # record key -> 0.0 / 1.0
    lines: int = 0
    rejected: Counter = field(default_factory=Counter)
    duplicates: int = 0

    @property
    def rejected_lines(self) -> int:
        return sum(self.rejected.values())


def parse_line(line: str, spec: FeatureSpec) -> tuple[str, list[float]]:
    """One ground-truth line -> (event id, labels in record order), the spec's positives."""
    return parse_ground_truth(line, spec.positive_labels)


def read_labels(
    files: Iterable[Path], spec: FeatureSpec, *, on_reject: Callable[[dict[str, Any]], None] | None = None
) -> LabelSet:
    out = LabelSet()
    seen: dict[str, tuple[float, ...]] = {}
    where: dict[str, dict[str, Any]] = {}
    conflicted: set[str] = set()
    reject = on_reject or (lambda _r: None)
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                out.lines += 1
                origin = {"file": path.name, "line": number, "text": line.rstrip("\n")}
                try:
                    event_id, values = parse_line(line, spec)
                except LabelError as err:
                    out.rejected[str(err).split(":")[0]] += 1
                    reject({**origin, "reason": str(err)})
                    continue
                if event_id in seen:
                    if seen[event_id] == tuple(values):
                        out.duplicates += 1
                        continue
                    conflicted.add(event_id)
                    out.rejected["conflicting labels"] += 1
                    reject({**origin, "reason": f"conflicting labels: {event_id} already has another label"})
                    continue
                seen[event_id] = tuple(values)
                where[event_id] = origin
    for event_id in conflicted:  # the first copy goes too: which one is right is unknown
        out.rejected["conflicting labels"] += 1
        reject({**where[event_id], "reason": f"conflicting labels: {event_id} has another label"})
        del seen[event_id]
    for event_id, outcomes in seen.items():
        if len(outcomes) == 1:
            out.labels[event_id] = outcomes[0]
        else:
            for i, v in enumerate(outcomes):
                out.labels[f"{event_id}#{i}"] = v
    return out
