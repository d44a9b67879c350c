"""What lands on disk: metadata, hashes, Tucker / DoRA / LoHa handling, and loading back (ours and LyCORIS)."""

from __future__ import annotations

import hashlib
import json

import helpers as synth
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from loratrain.shrink.lorafile import read_lora, write_lora
from loratrain.shrink.recipes import parse_recipe, sd_method
from loratrain.shrink.resize import analyse, build


def shrink_to(lora_path, out_path, selection, dtype=torch.float32, keep_other=False):
    lora = read_lora(lora_path)
    outcome = build(lora, analyse(lora, [selection]), selection, dtype, keep_other)
    write_lora(out_path, outcome.tensors, outcome.metadata)
    return outcome


def metadata_of(path):
    with safe_open(str(path), "pt") as fh:
        return fh.metadata()


def test_hashes_are_recomputed_as_sd_scripts_computes_them(tmp_path):
    gen = torch.Generator().manual_seed(3)
    t = {}
    synth.add(t, synth.LINEAR_Q, synth.known_layer(1536, 1536, synth.geometric(128, step=40), 64.0, gen))
    src = synth.save(tmp_path / "big.safetensors", t, synth.TRAINING_METADATA)
    out = tmp_path / "small.safetensors"
    shrink_to(src, out, sd_method(100, 100, None, None))
    meta = metadata_of(out)
    raw = out.read_bytes()
    assert len(raw) > 0x110000  # big enough for the legacy hash to cover real bytes
    # model hash: sha256 of everything after the header
    header = int.from_bytes(raw[:8], "little")
    assert meta["sshs_model_hash"] == hashlib.sha256(raw[8 + header :]).hexdigest()
    # legacy hash: 64 KiB at 1 MiB of a serialisation carrying only the ss_* metadata
    ss_only = {k: v for k, v in meta.items() if k.startswith("ss_")}
    blob = st_save(load_file(str(out)), ss_only)
    assert meta["sshs_legacy_hash"] == hashlib.sha256(blob[0x100000:0x110000]).hexdigest()[:8]
    assert meta["sshs_legacy_hash"] != "e3b0c442"
    assert meta["sshs_model_hash"] != synth.TRAINING_METADATA["sshs_model_hash"]


def test_metadata_keeps_training_keys_and_states_the_true_rank_alpha_and_recipe(tmp_path):
    gen = torch.Generator().manual_seed(4)
    t = {}
    synth.add(t, synth.LINEAR_Q, synth.known_layer(64, 48, synth.geometric(16), 8.0, gen))
    synth.add(t, synth.LINEAR_FF, synth.known_layer(48, 96, synth.geometric(16), 8.0, gen))
    src = synth.save(tmp_path / "uniform.safetensors", t, synth.TRAINING_METADATA)
    out = tmp_path / "r4.safetensors"
    shrink_to(src, out, sd_method(4, 4, None, None))
    meta = metadata_of(out)
    assert meta["ss_network_dim"] == "4"
    assert meta["ss_network_alpha"] == "2"  # alpha/r = 0.5 kept per rank
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert meta["ss_network_args"] == synth.TRAINING_METADATA["ss_network_args"]
    assert meta["ss_training_comment"].startswith("loratrain shrink rank=4,conv_rank=4 from rank 16")
    assert meta["ss_training_comment"].endswith("trained for a test")
    assert json.loads(meta["loratrain_shrink"])["method"] == "fixed"

    out2 = tmp_path / "dyn.safetensors"
    shrink_to(src, out2, parse_recipe("fro_lora=1,thr=-1.2,rescale=2"))
    meta2 = metadata_of(out2)
    record = json.loads(meta2["resize_params"])
    assert record == {"weights": {"fro_lora": 1.0}, "target_size": None, "threshold": -1.2, "rescale": 2.0}
    assert json.loads(meta2["loratrain_shrink"])["recipe"] == "fro_lora=1,thr=-1.2,rescale=2"


def test_differing_layer_ranks_are_recorded_as_dynamic(lora_path, tmp_path):
    out = tmp_path / "dyn.safetensors"
    shrink_to(lora_path, out, sd_method(None, None, "sv_fro", 0.9))
    meta = metadata_of(out)
    assert meta["ss_network_dim"] == "Dynamic"
    assert meta["ss_network_alpha"] == "Dynamic"


def test_a_shrunk_file_reads_back_through_our_reader_with_the_reported_ranks(lora_path, tmp_path):
    out = tmp_path / "back.safetensors"
    outcome = shrink_to(lora_path, out, sd_method(None, None, "sv_ratio", 9.0))
    back = read_lora(out)
    for r in outcome.results:
        if r.rank_after:
            assert back.layers[r.name].rank == r.rank_after
            assert back.layers[r.name].kind == r.kind
        else:
            assert r.name not in back.layers


def _module_tree(shapes: dict):
    """An nn.Module tree whose dotted paths give the LoRA names (`lora_unet_` + path with '_')."""
    from torch import nn

    root = nn.Module()
    for path, make in shapes.items():
        parent = root
        parts = path.split(".")
        for part in parts[:-1]:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(parts[-1], make())
    return root


def _lycoris_deltas(path, unet):
    from lycoris.kohya import create_network_from_weights

    network, _ = create_network_from_weights(1.0, str(path), None, None, unet, for_inference=True)
    return {m.lora_name: m for m in network.unet_loras}


def test_shrunk_locon_loads_through_lycoris_with_the_same_update(lora_path, tmp_path):
    from torch import nn

    out = tmp_path / "locon_r3.safetensors"
    outcome = shrink_to(lora_path, out, sd_method(3, 2, None, None))
    unet = _module_tree(
        {
            "input_blocks.4.1.transformer_blocks.0.attn1.to_q": lambda: nn.Linear(48, 64, bias=False),
            "input_blocks.4.1.transformer_blocks.0.ff.net.2": lambda: nn.Linear(96, 48, bias=False),
            "input_blocks.4.0.in_layers.2": lambda: nn.Conv2d(32, 40, 3, padding=1, bias=False),
            "input_blocks.4.0.skip_connection": lambda: nn.Conv2d(32, 40, 1, bias=False),
        }
    )
    modules = _lycoris_deltas(out, unet)
    assert set(modules) == {synth.LINEAR_Q, synth.LINEAR_FF, synth.CONV3, synth.CONV1}
    for name, module in modules.items():
        theirs, _ = module.get_diff_weight()
        up = outcome.tensors[f"{name}.lora_up.weight"].double()
        down = outcome.tensors[f"{name}.lora_down.weight"].double()
        k = down.shape[0]
        ours = float(outcome.tensors[f"{name}.alpha"]) / k * (up.reshape(up.shape[0], k) @ down.reshape(k, -1))
        assert module.lora_dim == (2 if down.dim() == 4 else 3)
        assert torch.allclose(theirs.double().reshape(ours.shape), ours, rtol=1e-5, atol=1e-7), name


def _tucker_file(tmp_path):
    gen = torch.Generator().manual_seed(5)
    parts = synth.tucker_layer(24, 16, 8, gen)
    t = {}
    synth.add(t, synth.CONV3, parts)
    synth.add(t, synth.LINEAR_Q, synth.known_layer(64, 48, synth.geometric(16), 8.0, gen))
    return synth.save(tmp_path / "tucker.safetensors", t, synth.TRAINING_METADATA), parts


def test_tucker_locon_cut_below_break_even_becomes_an_exact_plain_locon_that_lycoris_loads(tmp_path):
    from torch import nn

    src, parts = _tucker_file(tmp_path)
    out = tmp_path / "tucker_r2.safetensors"
    outcome = shrink_to(src, out, sd_method(4, 2, None, None))
    result = {r.name: r for r in outcome.results}[synth.CONV3]
    assert result.action == "converted" and result.rank_after == 2
    tensors = load_file(str(out))
    assert f"{synth.CONV3}.lora_mid.weight" not in tensors
    assert tensors[f"{synth.CONV3}.lora_down.weight"].shape == (2, 16, 3, 3)
    full = synth.tucker_delta(parts).reshape(24, -1)
    U, S, Vh = torch.linalg.svd(full, full_matrices=False)
    want = (U[:, :2] * S[:2]) @ Vh[:2]
    down, up = tensors[f"{synth.CONV3}.lora_down.weight"].double(), tensors[f"{synth.CONV3}.lora_up.weight"].double()
    got = float(tensors[f"{synth.CONV3}.alpha"]) / 2 * up.reshape(24, 2) @ down.reshape(2, -1)
    assert float((got - want).norm() / want.norm()) < 1e-5

    unet = _module_tree({"input_blocks.4.0.in_layers.2": lambda: nn.Conv2d(16, 24, 3, padding=1, bias=False)})
    theirs, _ = _lycoris_deltas(out, unet)[synth.CONV3].get_diff_weight()
    assert torch.allclose(theirs.double().reshape(24, -1), got, rtol=1e-5, atol=1e-7)


def test_tucker_locon_that_would_grow_as_plain_locon_is_kept_whole_with_its_core(tmp_path):
    from torch import nn

    src, parts = _tucker_file(tmp_path)
    out = tmp_path / "tucker_r6.safetensors"
    outcome = shrink_to(src, out, sd_method(4, 6, None, None))
    result = {r.name: r for r in outcome.results}[synth.CONV3]
    assert result.action == "whole" and result.rank_after == 8 and "Tucker" in result.note
    tensors = load_file(str(out))
    for suffix in ("lora_down.weight", "lora_mid.weight", "lora_up.weight"):
        assert torch.equal(tensors[f"{synth.CONV3}.{suffix}"], parts[suffix])
    unet = _module_tree({"input_blocks.4.0.in_layers.2": lambda: nn.Conv2d(16, 24, 3, padding=1, bias=False)})
    theirs, _ = _lycoris_deltas(out, unet)[synth.CONV3].get_diff_weight()
    assert torch.allclose(theirs.double(), synth.tucker_delta(parts), rtol=1e-5, atol=1e-6)


def test_dora_scale_is_kept_unchanged_and_the_file_loads_as_dora_in_lycoris(tmp_path):
    from torch import nn

    gen = torch.Generator().manual_seed(6)
    parts = synth.known_layer(64, 48, synth.geometric(16), 8.0, gen)
    parts["dora_scale"] = torch.rand(64, 1, generator=gen) + 0.5
    t = {}
    synth.add(t, synth.LINEAR_Q, parts)
    src = synth.save(tmp_path / "dora.safetensors", t)
    out = tmp_path / "dora_r4.safetensors"
    outcome = shrink_to(src, out, sd_method(4, 4, None, None))
    assert outcome.results[0].kind == "lora+dora" and outcome.results[0].rank_after == 4
    tensors = load_file(str(out))
    assert torch.equal(tensors[f"{synth.LINEAR_Q}.dora_scale"], parts["dora_scale"])
    unet = _module_tree({"input_blocks.4.1.transformer_blocks.0.attn1.to_q": lambda: nn.Linear(48, 64, bias=False)})
    module = _lycoris_deltas(out, unet)[synth.LINEAR_Q]
    assert module.wd and torch.equal(module.dora_scale.detach(), parts["dora_scale"])


def test_loha_layers_are_recognised_as_loha_and_copied_unchanged_only_when_asked(tmp_path):
    gen = torch.Generator().manual_seed(7)
    t = {}
    synth.add(t, synth.LINEAR_Q, synth.known_layer(64, 48, synth.geometric(16), 8.0, gen))
    loha = synth.loha_layer(48, 96, 4, gen)
    synth.add(t, synth.LINEAR_FF, loha)
    src = synth.save(tmp_path / "mixed.safetensors", t)
    lora = read_lora(src)
    assert lora.others[synth.LINEAR_FF].algo == "loha"
    out = tmp_path / "mixed_r4.safetensors"
    outcome = shrink_to(src, out, sd_method(4, 4, None, None), keep_other=True)
    assert {r.name: r.action for r in outcome.results}[synth.LINEAR_FF] == "copied"
    tensors = load_file(str(out))
    for suffix, tensor in loha.items():
        assert torch.equal(tensors[f"{synth.LINEAR_FF}.{suffix}"], tensor)
