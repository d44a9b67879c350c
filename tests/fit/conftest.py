"""Fixtures of the fit tests: sd-scripts' source tree for the tests that build its real SDXL U-Net."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# A local bare mirror of sd-scripts (48d368f), used when present; CI has neither it nor GitHub access.
MIRROR = Path("/work/.mirror/kohya-ss+sd-scripts/repo")


@pytest.fixture(scope="session")
def sd_scripts_source(tmp_path_factory) -> Path:
    """sd-scripts' `library/` and `networks/` source: LORATRAIN_TEST_SD_SCRIPTS, else an export of the local
    mirror; the test is skipped when neither exists."""
    env = os.environ.get("LORATRAIN_TEST_SD_SCRIPTS")
    if env:
        root = Path(env)
    elif MIRROR.is_dir():
        root = tmp_path_factory.mktemp("sd_scripts")
        archive = subprocess.run(
            ["git", f"--git-dir={MIRROR}", "archive", "HEAD", "library", "networks"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    else:
        pytest.skip("no sd-scripts source (set LORATRAIN_TEST_SD_SCRIPTS to a checkout of sd-scripts 48d368f)")
    if not (root / "library" / "sdxl_original_unet.py").is_file():
        pytest.skip(f"{root} is not an sd-scripts source tree (no library/sdxl_original_unet.py)")
    return root
