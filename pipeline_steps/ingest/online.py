"""Records into a feature group with BatchWriteRecord: batched, retried with backoff, idempotent.

Idempotent on re-run: before writing, each batch of record ids is read back with
BatchGetRecord and the records the online store already holds with the same event time and
the same values are skipped, so a re-run (a retried step, a cached upstream) writes nothing
twice and the offline store gets no duplicate rows.  Throttling, unavailable service and
unprocessed entries are retried with exponential backoff and jitter; a record that still
fails ends the step with the count and the first error.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

WRITE_BATCH = 25  # BatchWriteRecord's maximum entries per call
READ_BATCH = 100  # BatchGetRecord's maximum record ids per identifier
RETRYABLE = {
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
    "ServiceQuotaExceededException",
    "Throttling",
}

Record = list[dict[str, str]]


class IngestError(RuntimeError):
    """Some records could not be written after every retry; the message names the group."""


@dataclass
class GroupResult:
    group: str
    records: int = 0
    written: int = 0
    unchanged: int = 0  # already in the online store with the same event time and values
    retries: int = 0
    failed: list[str] = field(default_factory=list)  # "<record id>: <code> <message>"

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_group_name": self.group,
            "records": self.records,
            "written": self.written,
            "unchanged": self.unchanged,
            "retries": self.retries,
            "failed": len(self.failed),
        }


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _value(record: Record, name: str) -> str | None:
    for feature in record:
        if feature["FeatureName"] == name:
            return feature.get("ValueAsString")
    return None


def _same(a: Record, b: Record) -> bool:
    def values(record: Record) -> set[tuple[str, str | None]]:
        return {(f["FeatureName"], f.get("ValueAsString")) for f in record}

    return values(a) == values(b)


def _error_code(err: Exception) -> tuple[str, int]:
    response = getattr(err, "response", {}) or {}
    return response.get("Error", {}).get("Code", ""), response.get("ResponseMetadata", {}).get(
        "HTTPStatusCode", 0
    )


def _call(fn: Callable[[], Any], attempts: int, sleep: Callable[[float], None], result: GroupResult) -> Any:
    """One API call, retried on throttling and 5xx with exponential backoff and full jitter."""
    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        try:
            return fn()
        except ClientError as err:
            code, status = _error_code(err)
            if attempt + 1 == attempts or not (code in RETRYABLE or status >= 500):
                raise
            result.retries += 1
            sleep(random.uniform(0, min(0.2 * 2**attempt, 10.0)))
    raise AssertionError("unreachable")


def existing(
    client: Any,
    group: str,
    ids: list[str],
    result: GroupResult,
    attempts: int,
    sleep: Callable[[float], None],
) -> dict[str, Record]:
    """Record id -> the record the online store holds now (absent ids are left out)."""
    found: dict[str, Record] = {}
    for chunk in _chunks(ids, READ_BATCH):
        identifiers = [{"FeatureGroupName": group, "RecordIdentifiersValueAsString": chunk}]
        response = _call(partial(client.batch_get_record, Identifiers=identifiers), attempts, sleep, result)
        for item in response.get("Records", []):
            found[item["RecordIdentifierValueAsString"]] = item["Record"]
        # Errors and UnprocessedIdentifiers: unknown, so those records are written (harmless).
    return found


def write_group(
    client: Any,
    group: str,
    records: list[Record],
    *,
    id_name: str,
    attempts: int = 6,
    sleep: Callable[[float], None] = time.sleep,
) -> GroupResult:
    """Writes `records` (FeatureName/ValueAsString lists) to `group`; raises IngestError on failures."""
    result = GroupResult(group, records=len(records))
    ids = [_value(r, id_name) or "" for r in records]
    held = existing(client, group, ids, result, attempts, sleep)
    todo = []
    for record_id, record in zip(ids, records, strict=True):
        if record_id in held and _same(held[record_id], record):
            result.unchanged += 1
        else:
            todo.append(record)
    for batch in _chunks(todo, WRITE_BATCH):
        pending = [{"FeatureGroupName": group, "Record": record} for record in batch]
        for attempt in range(attempts):
            response = _call(partial(client.batch_write_record, Entries=pending), attempts, sleep, result)
            errors = response.get("Errors", [])
            hard = [e for e in errors if e["ErrorCode"] not in RETRYABLE]
            again = list(response.get("UnprocessedEntries", [])) + [
                e["Entry"] for e in errors if e["ErrorCode"] in RETRYABLE
            ]
            result.failed += [
                f"{_value(e['Entry']['Record'], id_name)}: {e['ErrorCode']} {e['ErrorMessage']}" for e in hard
            ]
            result.written += len(pending) - len(hard) - len(again)
            if not again:
                break
            if attempt + 1 == attempts:
                result.failed += [
                    f"{_value(e['Record'], id_name)}: not processed after {attempts} attempts" for e in again
                ]
                break
            result.retries += 1
            sleep(random.uniform(0, min(0.2 * 2**attempt, 10.0)))
            pending = again
    if result.failed:
        raise IngestError(
            f"feature group {group}: {len(result.failed)} of {result.records} records not written "
            f"({result.written} written, {result.unchanged} unchanged); first: {result.failed[0]}"
        )
    return result


def runtime_client(region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    # The SDK's own retries stay on for connection errors; throttling is handled above.
    return boto3.client(
        "sagemaker-featurestore-runtime",
        region_name=region,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )
