"""What the DuckDB preprocess cannot go below on this machine: its irreducible parts, measured alone.

    .venv/bin/python bench/prepare_floor.py [--rows 1000000] [--memory-limit 1500MB] [--threads 2] [--runs 3]
        [--codecs snappy,uncompressed,lz4_raw,zstd]

On the benchmark's merchant data (`prepare_engines.data_folder`), each in a fresh in-memory DuckDB
with the step's settings (threads, memory limit, insertion order not kept), best of --runs:
  decode      one pass reading every history column and its row number (the step makes two full
              passes, one to check every row, one to aggregate, plus one over two columns);
  aggregates  the point-in-time aggregates with no checks at all: raw history joined to the raw
              entities (the month window) and grouped per entity;
  writes      the step's seven output files written again by DuckDB from tables in memory (the
              files the step wrote, loaded first), one after another;
  codecs      (with --codecs) the same writes with each Parquet compression codec, and the files' size
              (the step writes DuckDB's default, snappy);
then the step itself (`run.run`, one run in this process).  Prints wall and CPU seconds (CPU: this
process, every thread).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from prepare_engines import SPEC, data_folder  # noqa: E402 - bench/ is not a package

from pipeline_steps.preprocess.run import Config, run  # noqa: E402

HISTORY = ("card_volume", "txn_count", "chargebacks", "amount_due", "amount_paid", "days_late")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _best(runs: int, work: Callable[[], None]) -> tuple[float, float]:
    """(wall, CPU) seconds of the run with the least CPU."""
    best: tuple[float, float] | None = None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), _cpu()
        work()
        took = (time.perf_counter() - wall, _cpu() - cpu)
        best = took if best is None or took[1] < best[1] else best
    assert best is not None
    return best


def _connect(threads: int, memory_limit: str, scratch: Path) -> duckdb.DuckDBPyConnection:
    config = {
        "threads": threads,
        "memory_limit": memory_limit,
        "preserve_insertion_order": False,
        "temp_directory": str(scratch),
    }
    return duckdb.connect(":memory:", config=config)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-limit", default="1500MB")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--codecs", default="", help="comma-separated Parquet codecs to time the writes with")
    args = parser.parse_args()
    data = data_folder(args.rows)
    history = f"read_parquet('{data / 'history'}/*.parquet', file_row_number = true)"
    entities = f"read_parquet('{data / 'entities'}/*.parquet')"
    results: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="prepare-floor-") as tmp:
        con = _connect(args.threads, args.memory_limit, Path(tmp))
        sums = ", ".join(f"sum({c})" for c in HISTORY)
        decode = (
            f"SELECT count(*), count(merchant_id), max(month), {sums}, max(file_row_number) FROM {history}"
        )
        results.append(
            ("decode: every history column once", *_best(args.runs, lambda: con.sql(decode).fetchall()))
        )
        month = "(year({t}) * 12 + month({t}))"
        aggregates = (
            "SELECT count(*) FROM (SELECT e._id, avg(CASE WHEN h._m >= e._m - 3 THEN card_volume END), "
            "avg(card_volume), avg(CASE WHEN h._m >= e._m - 3 THEN txn_count END), "
            "sum(CASE WHEN h._m >= e._m - 6 THEN chargebacks END), sum(amount_due), sum(amount_paid), "
            "max(days_late), count(card_volume) "
            f"FROM (SELECT application_id AS _id, merchant_id AS _k, "
            f"{month.format(t='TRY_CAST(application_date AS DATE)')} AS _m FROM {entities}) e "
            f"JOIN (SELECT merchant_id AS _k, {month.format(t='month')} AS _m, {', '.join(HISTORY)} "
            f"FROM {history}) h ON e._k = h._k AND h._m BETWEEN e._m - 12 AND e._m - 1 GROUP BY e._id)"
        )
        results.append(
            ("aggregates: join + group, no checks", *_best(args.runs, lambda: con.sql(aggregates).fetchall()))
        )
        out = Path(tmp) / "out"
        step = Config(
            spec=SPEC,
            entities=data / "entities",
            history=data / "history",
            output=out,
            threads=args.threads,
            memory_limit=args.memory_limit,
            scratch=Path(tmp),
        )
        wall, cpu = time.perf_counter(), _cpu()
        run(step)
        step_took = (time.perf_counter() - wall, _cpu() - cpu)
        files = sorted(p for p in out.rglob("*.parquet"))
        for i, path in enumerate(files):
            con.execute(f"CREATE TABLE out{i} AS SELECT * FROM read_parquet('{path}')")

        def write_all(codec: str = "") -> None:
            option = f", COMPRESSION {codec}" if codec else ""
            for i in range(len(files)):
                con.execute(f"COPY out{i} TO '{Path(tmp) / f'again{i}.parquet'}' (FORMAT PARQUET{option})")

        results.append((f"writes: the step's {len(files)} output files", *_best(args.runs, write_all)))
        codecs = []
        for codec in filter(None, args.codecs.split(",")):
            took = _best(args.runs, lambda: write_all(codec))  # noqa: B023 - called before the loop moves on
            size = sum((Path(tmp) / f"again{i}.parquet").stat().st_size for i in range(len(files)))
            codecs.append((f"writes, {codec}: {size / 2**20:.0f} MiB", *took))
        con.close()
    floor = (
        2 * results[0][1] + results[1][1] + results[2][1],
        2 * results[0][2] + results[1][2] + results[2][2],
    )
    print(
        f"{'wall s':>7} {'cpu s':>7}  ({args.rows:,} merchants, threads {args.threads}, {args.memory_limit})"
    )
    for label, wall, cpu in results:
        print(f"{wall:7.2f} {cpu:7.2f}  {label}")
    print(f"{floor[0]:7.2f} {floor[1]:7.2f}  floor: two decode passes + aggregates + writes")
    for label, wall, cpu in codecs:
        print(f"{wall:7.2f} {cpu:7.2f}  {label}")
    print(f"{step_took[0]:7.2f} {step_took[1]:7.2f}  the step (run.run, one run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
