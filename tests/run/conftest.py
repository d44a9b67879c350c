"""Fixtures of the launch tests; the files they build come from tests/helpers.py."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from helpers import PINS, ROOT, SDXL_KEYS, write_safetensors

from loratrain.launch import preflight

# The interpreter with sd-scripts' own accelerate pin (what `loratrain setup` installs); .ci/run builds it from
# constraints/sd-scripts-accelerate.txt. Another one can be named with this variable.
PINNED_PYTHON_VAR = "LORATRAIN_TEST_PINNED_ACCELERATE_PYTHON"
PINNED_VENV = ROOT / ".venv-sd-scripts-accelerate"
PINNED_ACCELERATE = PINS["accelerate"].pin  # sd-scripts' requirements.txt at 48d368f: accelerate==1.6.0


@dataclass(frozen=True)
class Launcher:
    """A training interpreter whose `accelerate launch` starts the fixture trainer."""

    python: str
    accelerate: str  # its accelerate version


@functools.lru_cache(maxsize=None)
def _accelerate_version_of(python: str) -> str:
    probe = "import importlib.metadata as m; print(m.version('accelerate'))"
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    return done.stdout.strip() if done.returncode == 0 else ""


def _pinned_launcher() -> Launcher:
    python = os.environ.get(PINNED_PYTHON_VAR) or str(PINNED_VENV / "bin" / "python")
    if not Path(python).is_file():
        why = (
            f"no interpreter with sd-scripts' accelerate {PINNED_ACCELERATE} ({python} is missing): "
            f"build it as .ci/run does, or name one in {PINNED_PYTHON_VAR}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(why + "; under CI=true both launchers must be tested")
        pytest.skip(why + "; under CI=true this fails instead")
    found = _accelerate_version_of(python)
    assert found == PINNED_ACCELERATE, f"{python} has accelerate {found or 'missing'}, not {PINNED_ACCELERATE}"
    return Launcher(python, found)


try:
    _TEST_ENV_ACCELERATE = metadata.version("accelerate")
except metadata.PackageNotFoundError:  # pragma: no cover - the test extra installs it
    _TEST_ENV_ACCELERATE = "missing"


@pytest.fixture(
    params=["test-env", "sd-scripts-pin"],
    ids=[f"accelerate-{_TEST_ENV_ACCELERATE}", f"accelerate-{PINNED_ACCELERATE}"],
)
def launcher(request) -> Launcher:
    """Each accelerate the runner must work with: this environment's (the pinned or newest release) and
    sd-scripts' pin, which a `loratrain setup` training environment has. They differ in how the launcher
    handles signals and the script's stderr (docs/run.md, "Two accelerate launchers")."""
    if request.param == "test-env":
        return Launcher(sys.executable, _TEST_ENV_ACCELERATE)
    return _pinned_launcher()


@pytest.fixture
def sdxl_model(tmp_path: Path) -> Path:
    return write_safetensors(tmp_path / "sdxl_base.safetensors", SDXL_KEYS)


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def without_environment_probe(monkeypatch) -> None:
    """Preflight without its training-environment check, for tests about files, GPUs, queues and the launch.

    That check is `loratrain doctor`'s probe: it imports torch in the training interpreter (about 2 s a run).
    tests/run/test_doctor.py and the tests that ask for `good_with_environment` or run a real process cover it.
    """
    monkeypatch.setattr(preflight, "CHECKS", [c for c in preflight.CHECKS if c is not preflight.check_training_env])
