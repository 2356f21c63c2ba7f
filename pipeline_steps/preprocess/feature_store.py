"""Feature Store records per spec feature group, and optional live ingestion (PutRecord)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from pipeline_steps.common.feature_records import feature_group_name, iso_times, to_put_records
from pipeline_steps.common.feature_spec import FeatureGroup, FeatureSpec

__all__ = ["feature_group_name", "group_records", "ingest", "iso_times", "runtime_client", "to_put_records"]

RETRYABLE = {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "ServiceQuotaExceededException"}


def group_records(features: pd.DataFrame, spec: FeatureSpec, group: FeatureGroup) -> pd.DataFrame:
    """Record id, event time (ISO-8601 string) and the group's features, typed as Feature Store will."""
    out = pd.DataFrame(
        {
            spec.entity_id: features[spec.entity_id].astype("string"),
            spec.entity_time: iso_times(features[spec.entity_time]),
        }
    )
    for name in group.features:
        out[name] = features[name]
    return out


def _put(client, group_name: str, record: list[dict[str, str]], attempts: int, sleep) -> None:
    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        try:
            client.put_record(FeatureGroupName=group_name, Record=record)
            return
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if attempt + 1 == attempts or not (code in RETRYABLE or status >= 500):
                raise
            sleep(min(0.1 * 2**attempt, 5.0))


def ingest(
    records: pd.DataFrame,
    group_name: str,
    client,
    *,
    batch_size: int = 500,
    workers: int = 4,
    attempts: int = 5,
    sleep=time.sleep,
) -> int:
    """PutRecord for every row, a batch at a time across a few threads, retrying throttling."""
    rows = list(to_put_records(records))
    sent = 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        if workers <= 1:
            for record in batch:
                _put(client, group_name, record, attempts, sleep)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda r: _put(client, group_name, r, attempts, sleep), batch))
        sent += len(batch)
    return sent


def runtime_client(region: str | None = None):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-featurestore-runtime",
        region_name=region,
        config=Config(retries={"max_attempts": 10, "mode": "adaptive"}),
    )
