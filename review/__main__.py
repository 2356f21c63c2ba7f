"""python -m review: the pull-request review report (`make review BASE=<ref>`).

    python -m review [--base REF | --base-assembly DIR [--base-config FILE]]
                     [--head-assembly DIR] [--config config/review.yaml] [--out FILE]

Without --base the base is the merge base with main.  Prints the Markdown report (and writes it
to --out).  Exit 0: nothing blocking; 3: a replacement or deletion of a stateful resource not
allowed in config/review.yaml, or unacknowledged cdk-nag findings; 2: bad input (a ref that does
not resolve, a synth that fails, a wrong review config), with one `error:` line (--debug for the
traceback); 1: the review itself broke (the CDK diff engine, a bug).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from pipeline_steps.common.atomic import write_text
from pipeline_steps.common.contract import EXIT_INTERNAL
from review.assembly import read_assembly
from review.compare import compare
from review.cost import load_prices
from review.report import render_report, render_stage_reports
from review.settings import DEFAULT_PATH, load_review_config
from review.synth import CONFIG_FILE, REPO_ROOT, default_base, read_config, synth_both
from review.template_diff import DiffEngineError
from workflow.cli import add_debug_flag, run_cli

BLOCKED = 3
PROG = "python -m review"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    base = parser.add_mutually_exclusive_group()
    base.add_argument("--base", help="git ref to compare against (default: the merge base with main)")
    base.add_argument("--base-assembly", type=Path, help="a saved cloud assembly (cdk.out) of the base")
    parser.add_argument(
        "--base-config", type=Path, help="environments.yaml of --base-assembly (default: current)"
    )
    parser.add_argument(
        "--head-assembly", type=Path, help="a cloud assembly of the change (default: synth now)"
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help="review settings (allow list, cost)"
    )
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--out-dir", type=Path, help="also write one report per environment (stage) as <env>.md here"
    )
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    try:
        config = load_review_config(args.config)
        with tempfile.TemporaryDirectory(prefix="review-") as tmp:
            base_ref = None
            if args.base_assembly is None:
                base_ref = args.base or default_base()
            base_synth, head_synth = synth_both(base_ref, Path(tmp), head=args.head_assembly is None)
            if base_synth is not None:
                base_dir, base_config, base_label = (
                    base_synth.assembly,
                    base_synth.raw_config,
                    base_synth.label,
                )
            else:
                base_dir, base_label = args.base_assembly, str(args.base_assembly)
                base_config = read_config(args.base_config or REPO_ROOT / CONFIG_FILE)
            if head_synth is not None:
                head_dir, head_config, head_label = (
                    head_synth.assembly,
                    head_synth.raw_config,
                    head_synth.label,
                )
            else:
                head_dir, head_label = args.head_assembly, str(args.head_assembly)
                head_config = read_config(REPO_ROOT / CONFIG_FILE)
            review = compare(
                read_assembly(base_dir),
                read_assembly(head_dir),
                base_config=base_config,
                head_config=head_config,
                config=config,
                prices=load_prices(),
                base_label=base_label,
                head_label=head_label,
            )
    except DiffEngineError as err:
        print(f"review: {err}", file=sys.stderr)
        return EXIT_INTERNAL
    text = render_report(review)
    if args.out:
        write_text(args.out, text)
    if args.out_dir:
        for environment, stage_text in render_stage_reports(review).items():
            write_text(args.out_dir / f"{environment}.md", stage_text)
    print(text)
    blocked = bool(review.blocking) or review.head_nag_open > 0
    if blocked:
        print(
            f"review: {len(review.blocking)} unallowed destructive change(s), "
            f"{review.head_nag_open} unacknowledged cdk-nag finding(s)",
            file=sys.stderr,
        )
    return BLOCKED if blocked else 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
