"""The pinned test environment: constraints/test.txt holds an exact version of everything the README's test command
installs, and that command and .ci/run both install through it (the same command, the same result next month)."""

from __future__ import annotations

import re

from helpers import PINS, ROOT, tomllib

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and NAME.fullmatch(name) and re.fullmatch(r"[\w.]+", version), (
            f"{path.name}: not name==version: {line}"
        )
        pins[_canon(name)] = version
    return pins


def test_every_package_the_test_command_asks_for_has_an_exact_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"], "clip-anytorch"]
    pins = _pins(ROOT / "constraints" / "test.txt")
    missing = [req for req in wanted if _canon(NAME.match(req).group()) not in pins and "python_version" not in req]
    assert missing == []
    assert pins["torch"] == "2.13.0"  # no local label: pip takes the CPU build from a wheel folder, else PyPI's


def test_the_readme_and_ci_install_through_the_constraints():
    readme = (ROOT / "README.md").read_text()
    (command,) = [line for line in readme.splitlines() if "pytest" in line and line.startswith("python3 -m venv")]
    installs = [part for part in command.split("&&") if " install " in part]
    assert len(installs) == 2 and all("-c constraints/test.txt" in part for part in installs), installs
    ci = (ROOT / ".ci" / "run").read_text()
    assert "PINS=(-c constraints/test.txt)" in ci and ci.count('${PINS[@]+"${PINS[@]}"}') == 2
    assert "--durations=20" in ci


def test_the_second_launcher_has_sd_scripts_own_accelerate_pin():
    pins = _pins(ROOT / "constraints" / "sd-scripts-accelerate.txt")
    assert pins["accelerate"] == PINS["accelerate"].pin  # sd-scripts' requirements.txt at 48d368f
