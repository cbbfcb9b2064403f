"""Serving installs on the Pythons people have: 3.11, 3.12 (Ubuntu 24.04), 3.13 (Debian 13).

This machine has only 3.11, so for the others pip resolves `pip install .` as it would there
(binary wheels only, for that Python and Linux x86-64) without installing anything: every
pinned dependency must have a wheel for it. Needs the package index, as CI has.
"""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64"]


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_serving_dependencies_resolve_for_python(python, tmp_path):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert python + ".0" in SpecifierSet(project["requires-python"])
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--dry-run", "--ignore-installed",
           "--only-binary=:all:", "--python-version", python, "--target", str(tmp_path / "target"),
           "--report", str(report), str(REPO)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    installed = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                 for i in json.loads(report.read_text())["install"]}
    for pin in project["dependencies"]:
        name, version = pin.split("#")[0].strip().split("==")
        assert installed.get(name.lower()) == version, (name, installed.get(name.lower()))
