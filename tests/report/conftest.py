"""Fixtures for the report tests: runs laid out on disk the way sd-scripts and `loratrain run` leave them."""

from __future__ import annotations

import pytest
from helpers import NAN_MODULE, UNTRAINED, make_run


@pytest.fixture
def finished_run(tmp_path):
    """200 steps, saves every 50 (the one at step 100 has a NaN), samples every 100 with 3 prompts."""
    return make_run(tmp_path, untrained=UNTRAINED, nan_save=100, nan_module=NAN_MODULE)
