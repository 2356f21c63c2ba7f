"""python -m workflow.definition [--environment dev] [--spec FILE] [--out FILE]

Prints (or writes) the pipeline definition JSON that CDK deploys for an environment, after
checking it against the pipeline-definition schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from config import load_config
from pipeline_steps.common.feature_spec import load_spec
from workflow.definition.build import build_definition
from workflow.definition.environment import settings_for_environment
from workflow.definition.schema_check import validate_definition

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow.definition",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--environment", default="dev")
    parser.add_argument("--spec", type=Path, help="feature spec (default: the config's)")
    parser.add_argument("--out", type=Path, help="write here instead of printing")
    args = parser.parse_args(argv)
    spec = load_spec(args.spec or REPO_ROOT / load_config().feature_spec)
    text = build_definition(spec, settings_for_environment(args.environment))
    validate_definition(json.loads(text))
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
