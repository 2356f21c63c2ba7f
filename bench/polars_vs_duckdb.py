"""Polars against DuckDB on the heavy core of preparation: the same work, data and run.

    .venv/bin/python bench/polars_vs_duckdb.py [--rows 1000000] [--runs 3] [--threads 2]
        [--memory-limit-mb 1500]

The work (the merchant spec's history table, 26 rows per merchant): every row's checks, the
de-duplication (exact and key duplicates, the first occurrence kept), the point-in-time
aggregates per kept entity and the join back to the entities with the derived ratios; writing
the features and the history's quarantine (every rejected row with its reasons) as Parquet.

- DuckDB: the step's own statements, unchanged (`plan.history_plan`, `prepare.validate_table`:
  flagged rows, statistics, schema checks, rejected rows, duplicates, kept view;
  `plan.features_sql`), on the step's executor (`DuckDBEngine`: database file in a scratch
  folder, memory limit, threads).
- Polars: the same rules written as lazy Polars (`bench/polars_prepare.py`), streaming engine.

Both start from the same kept entities: the entity table's validation (1/26 of the rows) is
run once by the DuckDB step's statements, outside the measured runs, into
.cache/bench-data/<rows>-entities-kept.parquet.  Data comes from `prepare_engines.data_folder`.
Each run is its own process (`prepare_engines.measure_process`): wall time, CPU time and peak
RSS.  After the runs, the outputs are compared (the accounting, every quarantined row's code,
reason, source and text, every feature of every row within 1e-9 relative); a difference fails
the benchmark (exit 1): a race over different work would be no race.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prepare_engines import SPEC, Measurement, data_folder, engine_line, measure_process, medians, same_column

ENGINES = ("duckdb", "polars")


def entities_kept(data: Path) -> Path:
    """The kept entities of `data` (the step's entity statements on DuckDB), made once."""
    target = data.parent / f"{data.name}-entities-kept.parquet"
    if target.exists():
        return target
    from pipeline_steps.common.feature_spec import load_spec
    from pipeline_steps.preprocess import files as io
    from pipeline_steps.preprocess.sql import plan
    from pipeline_steps.preprocess.sql.duckdb_engine import DuckDBEngine
    from pipeline_steps.preprocess.sql.prepare import validate_table

    spec = load_spec(SPEC)
    with tempfile.TemporaryDirectory(prefix="entities-kept-") as scratch:
        engine = DuckDBEngine(Path(scratch), threads=2)
        kinds = engine.read_table(
            "entities", io.list_inputs(data / "entities", "entities"), spec.column_names
        )
        ent = plan.entity_plan(spec, kinds, plan.Share(), engine.functions)
        profile = [(str(v), int(n)) for v, n in engine.rows(ent.label_profile_sql())]
        ent.label, error = plan.label_rule(spec, profile, spec.max_invalid_fraction)
        assert error is None, error
        validate_table(engine, ent, spec.max_invalid_fraction)
        engine.write_parquet("SELECT * FROM entities_kept ORDER BY _pos", target)
        engine.close()
    return target


def run_duckdb(data: Path, kept: Path, out: Path, threads: int, memory_limit_mb: int | None) -> None:
    """In this (child) process: the step's history statements and features on DuckDB."""
    from pipeline_steps.common.feature_spec import load_spec
    from pipeline_steps.preprocess import files as io
    from pipeline_steps.preprocess.run import _default_memory_limit
    from pipeline_steps.preprocess.sql import plan
    from pipeline_steps.preprocess.sql.duckdb_engine import DuckDBEngine
    from pipeline_steps.preprocess.sql.prepare import validate_table

    spec = load_spec(SPEC)
    h = spec.history
    assert h is not None
    out.mkdir(parents=True, exist_ok=True)
    limit = f"{memory_limit_mb}MB" if memory_limit_mb else _default_memory_limit()
    engine = DuckDBEngine(out / "scratch", threads, limit)
    files = io.list_inputs(data / "history", "history")
    kinds = engine.read_table("history", files, [h.key, h.time] + [c.name for c in h.columns])
    hist = plan.history_plan(spec, kinds, plan.Share(), engine.functions)
    _, acc = validate_table(engine, hist, spec.max_invalid_fraction)
    engine.table("entities_kept", f"SELECT * FROM read_parquet({plan.lit(kept)})")
    engine.write_parquet(
        f"SELECT * FROM ({plan.features_sql(spec, None)}) f ORDER BY _pos", out / "features.parquet"
    )
    texts = ", ".join(plan.q(r.name) for r in hist.rules)
    parts = [
        f"SELECT _table, {texts}, _source_file, _row_number, _code, _reason, _pos FROM {t} WHERE _mine"
        for t in ("history_bad", "history_dups")
    ]
    engine.write_parquet(f"{' UNION ALL '.join(parts)} ORDER BY _pos", out / "quarantine.parquet")
    engine.close()
    shutil.rmtree(out / "scratch", ignore_errors=True)
    (out / "accounting.json").write_text(json.dumps(acc, indent=1, sort_keys=True) + "\n")


def run_polars(data: Path, kept: Path, out: Path) -> None:
    """In this (child) process: the same work in Polars."""
    from polars_prepare import run

    from pipeline_steps.common.feature_spec import load_spec
    from pipeline_steps.preprocess import files as io

    run(load_spec(SPEC), io.list_inputs(data / "history", "history"), kept, out)


def polars_env(threads: int, memory_limit_mb: int | None, scratch: Path) -> dict[str, str]:
    """Polars' settings are environment variables read at import: threads, and the out-of-core
    memory budget (new in Polars 2, documented by its authors as early and unstable: not every
    buffer is tracked or spillable) with its spill folder."""
    env = {"POLARS_MAX_THREADS": str(threads)}
    if memory_limit_mb:
        env.update(POLARS_OOC_MEMORY_BUDGET_MB=str(memory_limit_mb), POLARS_OOC_SPILL_DIR=str(scratch))
        env.update(POLARS_TEMP_DIR=str(scratch))
    return env


def differences(a: Path, b: Path) -> list[str]:
    """What differs between two engines' outputs (empty: the same answer)."""
    import numpy as np
    import pyarrow.parquet as pq

    problems = []
    acc_a, acc_b = (json.loads((x / "accounting.json").read_text()) for x in (a, b))
    for key in ("rows_in", "rows_out", "rows_quarantined", "quarantined_by_reason", "duplicates"):
        if acc_a[key] != acc_b[key]:
            problems.append(f"accounting {key}: {acc_a[key]} vs {acc_b[key]}")
    qa, qb = (pq.read_table(x / "quarantine.parquet").to_pandas() for x in (a, b))
    if len(qa) != len(qb) or list(qa["_pos"]) != list(qb["_pos"]):
        problems.append(f"quarantine: {len(qa)} vs {len(qb)} rows, or different rows")
    else:
        for column in qa.columns:
            same = qa[column].astype("string").fillna("\0") == qb[column].astype("string").fillna("\0")
            if not same.all():
                first = int(np.flatnonzero(~same.to_numpy())[0])
                problems.append(
                    f"quarantine {column}: {int((~same).sum())} rows differ, "
                    f"e.g. {qa[column].iloc[first]!r} vs {qb[column].iloc[first]!r}"
                )
    fa, fb = (pq.read_table(x / "features.parquet").to_pandas() for x in (a, b))
    if len(fa) != len(fb) or list(fa["_pos"]) != list(fb["_pos"]):
        return problems + [f"features: {len(fa)} vs {len(fb)} rows, or different rows"]
    if sorted(fa.columns) != sorted(fb.columns):
        return problems + [f"features: columns {sorted(fa.columns)} vs {sorted(fb.columns)}"]
    for column in fa.columns:
        equal = same_column(
            fa[column], fb[column], fa[column].dtype.kind in "biuf" and fb[column].dtype.kind in "biuf"
        )
        if not equal:
            problems.append(f"features: {column} differs")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=2, help="threads for each engine (this machine: 2 cores)"
    )
    parser.add_argument(
        "--memory-limit-mb",
        type=int,
        default=None,
        help="DuckDB's memory_limit and Polars' out-of-core memory budget (default: DuckDB half the RAM, "
        "Polars none)",
    )
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kept", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one == "duckdb":
        run_duckdb(args.data, args.kept, args.out, args.threads, args.memory_limit_mb)
        return 0
    if args.one == "polars":
        run_polars(args.data, args.kept, args.out)
        return 0
    data = data_folder(args.rows)
    kept = entities_kept(data)
    engines = args.engines.split(",")
    results: dict[str, list[Measurement]] = {e: [] for e in engines}
    with tempfile.TemporaryDirectory(prefix="polars-vs-duckdb-") as tmp:
        for _ in range(args.runs):
            for engine in engines:
                out = Path(tmp) / engine
                shutil.rmtree(out, ignore_errors=True)
                argv = [
                    __file__,
                    "--one",
                    engine,
                    "--data",
                    str(data),
                    "--kept",
                    str(kept),
                    "--out",
                    str(out),
                ]
                argv += ["--threads", str(args.threads)]
                argv += ["--memory-limit-mb", str(args.memory_limit_mb)] if args.memory_limit_mb else []
                env = polars_env(args.threads, args.memory_limit_mb, Path(tmp)) if engine == "polars" else {}
                results[engine].append(measure_process(argv, engine, env))
                print(engine_line(engine, results[engine][-1]), file=sys.stderr)
        problems = differences(Path(tmp) / "duckdb", Path(tmp) / "polars") if len(engines) == 2 else []
        accounting = json.loads((Path(tmp) / engines[0] / "accounting.json").read_text())
    median = medians(results)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    limit = f"{args.memory_limit_mb} MB" if args.memory_limit_mb else "DuckDB half the RAM, Polars none"
    print(
        f"history checks + de-duplication + point-in-time features, {args.rows:,} merchants "
        f"({accounting['rows_in']:,} history rows, {accounting['rows_quarantined']:,} quarantined), "
        f"median of {args.runs} runs, {args.threads} threads, memory limit {limit}, load average {load}"
    )
    for engine, figures in median.items():
        print(engine_line(engine, figures, "peak "))
    if len(engines) == 2:
        (ds, dm, dc), (ps, pm, pc) = median["duckdb"], median["polars"]
        print(f"  ratio polars/duckdb: time {ps / ds:.3f}, peak memory {pm / dm:.3f}, CPU time {pc / dc:.3f}")
        print("  same answer: " + ("yes" if not problems else "NO\n    " + "\n    ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
