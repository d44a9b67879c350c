"""Fixtures for the report tests: runs laid out on disk the way sd-scripts and `loratrain run` leave them."""

from __future__ import annotations

import pytest

import report_synth as synth

UNTRAINED = ("lora_unet_middle_block_1_proj_in", "lora_unet_output_blocks_3_1_transformer_blocks_0_attn2_to_k")
NAN_MODULE = "lora_unet_input_blocks_4_1_proj_out"


@pytest.fixture
def finished_run(tmp_path):
    """200 steps, saves every 50 (the one at step 100 has a NaN), samples every 100 with 3 prompts."""
    return synth.make_run(tmp_path, untrained=UNTRAINED, nan_save=100, nan_module=NAN_MODULE)
