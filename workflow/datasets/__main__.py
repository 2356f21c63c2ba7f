"""python -m workflow.datasets --rows 100000 --seed 7 --out DIR [--drift] [--format parquet|csv] [--parts N]
    [--workers N]

Writes DIR/entities/ and DIR/history/ (merchant credit), or with `--dataset islr-default`
DIR/entities/part-00000.csv (ISLR's Default), or with `--dataset credit-data` DIR/credit_data.csv
(modeldata's credit_data, unchanged: no time column; draft its spec with workflow.draft_spec);
--rows/--seed/--drift apply to the merchant data only.
"""

from __future__ import annotations

import argparse
import sys
import time

from workflow.cli import add_debug_flag, run_cli

PROG = "python -m workflow.datasets"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset", choices=("merchant-credit", "islr-default", "credit-data"), default="merchant-credit"
    )
    parser.add_argument("--rows", type=int, default=100_000, help="merchants (one application each)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--drift",
        action="store_true",
        help="a later, harder market: less card volume, "
        "more late days, a shifted industry mix, a higher default rate",
    )
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument(
        "--parts",
        type=int,
        default=1,
        help="files per table for each 100k merchants (by merchant: copies of an application share a file)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="processes making blocks of merchants (default: the CPUs, at most 8); the data is the same",
    )
    parser.add_argument("--clean", action="store_true", help="skip the injected corrupt/duplicate rows")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.dataset == "islr-default":
        from workflow.datasets.public import write_islr_default

        path = write_islr_default(args.out)
        print(f"wrote {path} in {time.perf_counter() - started:.2f}s")
        return 0
    if args.dataset == "credit-data":
        from workflow.datasets.public import write_credit_data

        print(f"wrote {write_credit_data(args.out)} in {time.perf_counter() - started:.2f}s")
        return 0
    from workflow.datasets.merchant_credit import make

    if args.rows < 1 or args.parts < 1:
        parser.error("--rows and --parts must be at least 1")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    written = make(
        args.out,
        args.rows,
        args.seed,
        drift=args.drift,
        fmt=args.format,
        parts=args.parts,
        mess=not args.clean,
        workers=args.workers,
    )
    files = sum(len(v) for v in written.values())
    print(f"wrote {files} files under {args.out} in {time.perf_counter() - started:.2f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
