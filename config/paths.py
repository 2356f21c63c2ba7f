"""Where the repository is: the one root every path of the project's own files starts from.

Imported by the stacks (assets, the feature spec) and by the workflow (the step modules, the
caches, the default spec); the steps never need it, they take every path as an argument.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
