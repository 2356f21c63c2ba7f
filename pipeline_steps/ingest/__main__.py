"""python -m pipeline_steps.ingest [--records D] [--feature-spec P] [--feature-group-prefix P] [--output D]

Loads the preprocess step's Feature Store record files (`<records>/<group>/part-*.parquet`)
into the feature groups `<prefix>-<group>` with BatchWriteRecord (batched, retried, skipping
records the online store already holds: a re-run writes nothing twice).  This job runs in the
VPC without network isolation: it calls the Feature Store runtime through the VPC endpoint.

With --offline-store DIR (or $LOCAL_FEATURE_STORE_DIR, which the local runner sets) the
records go to a local offline store folder instead, read back by
`pipeline_steps.common.offline_store.point_in_time`.  Paths default to the processing job's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from pipeline_steps.common.contract import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    DataError,
    InputError,
    opt_ml_root,
    processing_message_path,
    write_failure,
)

LOCAL_STORE_ENV = "LOCAL_FEATURE_STORE_DIR"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    root = opt_ml_root()
    proc = root / "processing"
    p = argparse.ArgumentParser(
        prog="python -m pipeline_steps.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--records", type=Path, default=proc / "input" / "feature_store")
    p.add_argument("--feature-spec", type=Path, default=proc / "input" / "spec")
    p.add_argument("--feature-group-prefix", default="", help="feature group names are <prefix>-<group>")
    p.add_argument("--output", type=Path, default=proc / "output" / "report")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument("--offline-store", type=Path, default=os.environ.get(LOCAL_STORE_ENV) or None)
    p.add_argument("--debug", action="store_true", help="show the traceback of an input error too")
    args = p.parse_args(argv)
    args.message = processing_message_path(root)
    return args


def ingest(args: argparse.Namespace, client: Any = None) -> dict[str, Any]:
    import pandas as pd

    from pipeline_steps.common import offline_store
    from pipeline_steps.common.feature_records import feature_group_name, to_put_records
    from pipeline_steps.common.feature_spec import load_spec
    from pipeline_steps.ingest import online

    spec = load_spec(args.feature_spec)
    started = time.perf_counter()
    groups: dict[str, Any] = {}
    for group in spec.feature_groups:
        folder = Path(args.records) / group.name
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            raise DataError(f"records: no .parquet files for feature group '{group.name}' in {folder}")
        records = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        name = feature_group_name(args.feature_group_prefix, group)
        if args.offline_store:
            groups[group.name] = {
                "feature_group_name": name,
                **offline_store.write_group(args.offline_store, name, records, spec),
            }
        else:
            client = client or online.runtime_client(args.region)
            result = online.write_group(client, name, list(to_put_records(records)), id_name=spec.entity_id)
            groups[group.name] = result.as_dict()
    return {
        "target": f"local offline store {args.offline_store}" if args.offline_store else "feature store",
        "feature_groups": groups,
        "seconds": round(time.perf_counter() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import traceback

    from pipeline_steps.common import atomic
    from pipeline_steps.ingest.online import IngestError

    try:
        report = ingest(args)
    except InputError as err:
        if args.debug:
            traceback.print_exc()
        write_failure("ingest", str(err), args.message)
        return EXIT_INPUT
    except IngestError as err:  # the Feature Store refused records after every retry
        write_failure("ingest", str(err), args.message)
        return EXIT_INTERNAL
    atomic.write_json(Path(args.output) / "report.json", report)
    for group, entry in report["feature_groups"].items():
        counts = f"{entry['records']} records, {entry['written']} written, {entry['unchanged']} unchanged"
        print(f"ingest {group}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
