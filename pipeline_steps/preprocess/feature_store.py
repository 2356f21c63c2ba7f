"""Feature Store records per spec feature group, and optional live ingestion (PutRecord)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import FeatureGroup, FeatureSpec

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


def iso_times(times: pd.Series) -> pd.Series:
    """datetime64 -> '2023-04-05T00:00:00Z' (Feature Store's ISO-8601 event time)."""
    values = times.to_numpy().astype("datetime64[s]")
    text = pd.Series(np.char.add(np.datetime_as_string(values, unit="s"), "Z"), dtype="string")
    return text.where(~times.isna().to_numpy(), None)


def feature_group_name(prefix: str, group: FeatureGroup) -> str:
    return f"{prefix}-{group.name}" if prefix else group.name


def _value_text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    return str(value)


def to_put_records(records: pd.DataFrame) -> Iterable[list[dict[str, str]]]:
    """Each row as PutRecord's Record: FeatureName/ValueAsString pairs, nulls left out."""
    names = list(records.columns)
    for row in records.itertuples(index=False, name=None):
        yield [
            {"FeatureName": n, "ValueAsString": t}
            for n, v in zip(names, row)
            if (t := _value_text(v)) is not None
        ]


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
