"""The local offline store: Feature Store records as a Parquet folder, and the point-in-time read.

Layout (like SageMaker's offline store, partitioned by event month):
`<store>/<feature group name>/data/year=YYYY/month=MM/part-<digest>.parquet`, each row a
record with the group's features plus `write_time` and `is_deleted`.  Writing is idempotent:
a record already stored with the same id, event time and values is not written again, and a
file is named by its content, so a repeated write replaces rather than duplicates it.

`point_in_time` answers the training query: for each (id, time) the latest record of each
group whose event time is at or before that time (later writes win a tie).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_steps.common.atomic import atomic_write
from pipeline_steps.common.feature_spec import FeatureGroup, FeatureSpec

WRITE_TIME = "write_time"
IS_DELETED = "is_deleted"


def group_folder(store: Path, group_name: str) -> Path:
    return Path(store) / group_name / "data"


def read_group(store: Path, group_name: str) -> pd.DataFrame | None:
    folder = group_folder(store, group_name)
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    if not files:
        return None
    # Partition folders are layout, not columns: read each file as it was written.
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def _row_digests(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    text = frame[columns].astype("string").fillna("\0")
    return pd.util.hash_pandas_object(text, index=False)


def write_group(
    store: Path, group_name: str, records: pd.DataFrame, spec: FeatureSpec, *, write_time: str | None = None
) -> dict[str, int]:
    """Appends the records not already stored; returns {"records", "written", "unchanged"}."""
    columns = list(records.columns)
    stored = read_group(store, group_name)
    new = records.reset_index(drop=True)
    if stored is not None and len(stored):
        held = set(_row_digests(stored, columns))
        fresh = ~_row_digests(new, columns).isin(held).to_numpy()
        new = new[fresh].reset_index(drop=True)
    stamp = write_time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = new.assign(**{WRITE_TIME: stamp, IS_DELETED: False})
    months = pd.to_datetime(out[spec.entity_time], utc=True).dt.strftime("year=%Y/month=%m")
    for month, part in out.groupby(months.to_numpy(), sort=True):
        table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
        digest = hashlib.sha256(
            pd.util.hash_pandas_object(part[columns].astype("string").fillna("\0"), index=False)
            .to_numpy()
            .tobytes()
        ).hexdigest()[:16]
        target = group_folder(store, group_name) / month / f"part-{digest}.parquet"
        atomic_write(target, partial(_write_parquet, table))
    return {"records": len(records), "written": len(new), "unchanged": len(records) - len(new)}


def _write_parquet(table: pa.Table, path: str) -> None:
    pq.write_table(table, path)


def point_in_time(
    store: Path, spec: FeatureSpec, entities: pd.DataFrame, group_names: dict[str, str] | None = None
) -> pd.DataFrame:
    """`entities` (the spec's id and time columns, plus any others) joined with every group's
    latest record at or before each row's time; rows keep their order.  `group_names` maps a
    spec group to its feature group name (default: the spec name)."""
    out = entities.reset_index(drop=True).copy()
    out["_order"] = range(len(out))
    when = pd.to_datetime(out[spec.entity_time], utc=True).astype("datetime64[us, UTC]")
    out["_t"] = when
    for group in spec.feature_groups:
        name = (group_names or {}).get(group.name, group.name)
        records = read_group(store, name)
        if records is None:
            raise FileNotFoundError(f"offline store {store}: no records for feature group {name}")
        out = _as_of(out, records, spec, group)
    return out.sort_values("_order").drop(columns=["_order", "_t"]).reset_index(drop=True)


def _as_of(left: pd.DataFrame, records: pd.DataFrame, spec: FeatureSpec, group: FeatureGroup) -> pd.DataFrame:
    right = records[~records[IS_DELETED].astype(bool)].copy()
    right["_t"] = pd.to_datetime(right[spec.entity_time], utc=True).astype("datetime64[us, UTC]")
    # The latest write of each (id, event time) wins, then merge_asof takes the latest event time.
    right = right.sort_values([WRITE_TIME]).drop_duplicates([spec.entity_id, "_t"], keep="last")
    right = right[[spec.entity_id, "_t", *group.features]].sort_values("_t")
    left = left.sort_values("_t")
    left_ids = left[spec.entity_id].astype("string")
    joined = pd.merge_asof(
        left.assign(_id=left_ids),
        right.assign(_id=right[spec.entity_id].astype("string")).drop(columns=[spec.entity_id]),
        on="_t",
        by="_id",
        direction="backward",
    )
    return joined.drop(columns=["_id"])
