"""The project's constructs/ folder must not shadow the `constructs` library (see stacks/__init__.py)."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_library_is_not_shadowed_and_project_constructs_resolve():
    import constructs
    import constructs.secure_bucket
    import stacks  # noqa: F401 - imported for its effect: the project's constructs/ resolve

    assert "site-packages" in constructs.__file__
    assert constructs.Construct.__module__ == "constructs"
    assert Path(constructs.Construct.__init__.__code__.co_filename).is_relative_to(
        Path(constructs.__file__).parent
    )
    assert Path(constructs.secure_bucket.__file__) == REPO_ROOT / "constructs" / "secure_bucket.py"
    assert not (REPO_ROOT / "constructs" / "__init__.py").exists()


def test_from_repository_root_like_python_app_py():
    code = (
        "import constructs, stacks, constructs.network;"
        "from constructs import Construct;"
        "print(constructs.__file__); print(constructs.network.__file__); print(Construct.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    library, network, module = out.stdout.split()
    assert "site-packages" in library
    assert Path(network) == REPO_ROOT / "constructs" / "network.py"
    assert module == "constructs"
