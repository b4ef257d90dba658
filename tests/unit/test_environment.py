"""The pinned environment is consistent: requirements.txt == environment.yml, all `==`, torch 2.13.0."""

import os
import re
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
    for target in ("test", "reproduce", "venv", "nb-verify", "nb-params", "nb-check", "notebooks"):
        assert re.search(rf"^{re.escape(target)}\s*:", text, re.M), f"Makefile has no `{target}` target"
