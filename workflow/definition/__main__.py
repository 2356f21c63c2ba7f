"""python -m workflow.definition [--environment dev] [--spec FILE] [--out FILE] [--debug]

Prints (or writes) the pipeline definition JSON that CDK deploys for an environment, after
checking it against the pipeline-definition schema.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from config import load_config
from pipeline_steps.common.atomic import write_text
from pipeline_steps.common.feature_spec import load_spec
from workflow.cli import add_debug_flag, run_cli
from workflow.definition.cached import definition_text
from workflow.definition.environment import settings_for_environment

PROG = "python -m workflow.definition"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--environment", default="dev")
    parser.add_argument("--spec", type=Path, help="feature spec (default: the config's)")
    parser.add_argument("--out", type=Path, help="write here instead of printing")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    spec = load_spec(args.spec or load_config().feature_spec_path)
    text = definition_text(spec, settings_for_environment(args.environment))
    if args.out:
        write_text(args.out, text)
    else:
        print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
