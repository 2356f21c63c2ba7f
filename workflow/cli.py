"""How every command of the workflow ends: a result, or one clear message and exit code 2.

A user-facing error (`InputError` from `pipeline_steps.common.contract`: a bad file, field,
argument or value, the message naming it and what is allowed) prints `error: <message>`
and exits 2, with no traceback unless `--debug` is given.  Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from pipeline_steps.common.contract import EXIT_INPUT, InputError


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the traceback of an input error too")


def run_cli(prog: str, main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> int:
    """main(argv) -> its exit code; an InputError -> its message on stderr and EXIT_INPUT
    (with --debug, after a line naming `prog` and the traceback)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return main(args)
    except InputError as err:
        if "--debug" in args:
            print(f"{prog}: traceback of the error below", file=sys.stderr)
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
