"""Ranks chosen by every recipe and sd-scripts method, and the rebuilt updates, against independent math.

The reference implementations here use a dense `torch.linalg.svd` of the update, written from the
documented rules (docs/shrink.md, reference resize.md), not from our code path.
"""

from __future__ import annotations

import json
import math
import os
import time

import helpers as synth
import pytest
import torch
from safetensors import safe_open

from loratrain.shrink.base import BaseCheckpoint
from loratrain.shrink.lorafile import read_lora
from loratrain.shrink.recipes import parse_recipe, sd_method
from loratrain.shrink.resize import analyse, build


def dense(down, up, alpha):
    """ΔW = (alpha/r)·up·down flattened to 2-D, in float64."""
    r = down.shape[0]
    return (alpha / r) * up.double().reshape(up.shape[0], -1) @ down.double().reshape(r, -1)


def truncated(dW, keep):
    U, S, Vh = torch.linalg.svd(dW, full_matrices=False)
    return (U[:, :keep] * S[:keep]) @ Vh[:keep]


def rebuilt(tensors, name):
    down = tensors[f"{name}.lora_down.weight"]
    up = tensors[f"{name}.lora_up.weight"]
    alpha = float(tensors[f"{name}.alpha"].double()) if f"{name}.alpha" in tensors else down.shape[0]
    return dense(down, up, alpha)


def rel(a, b):
    return float((a - b).norm() / b.norm())


def input_delta(lora, name):
    layer = lora.layers[name]
    return dense(layer.down, layer.up, layer.alpha)


def sd_scripts_rank(dW, method, p, cap=None, fixed=None):
    """networks/resize_lora.py (main, 48d368fa) rank rule on a dense SVD, written from its description."""
    S = torch.linalg.svdvals(dW)
    if fixed is not None:
        return fixed
    N = len(S)
    if method == "sv_ratio":
        index = int((S > S[0] / p).sum())
    elif method == "sv_cumulative":
        index = int(torch.searchsorted(torch.cumsum(S, 0) / S.sum(), torch.tensor(p, dtype=S.dtype))) + 1
    else:
        sq = S**2
        index = int(torch.searchsorted(torch.cumsum(sq, 0) / sq.sum(), torch.tensor(p * p, dtype=S.dtype))) + 1
    k = max(1, min(index, N - 1)) + 1
    return min(k, cap) if cap else k


def run(lora, selection, base=None, dtype=torch.float32):
    infos = analyse(lora, [selection], base)
    return build(lora, infos, selection, dtype)


def ranks(outcome):
    return {r.name: r.rank_after for r in outcome.results}


@pytest.fixture
def lora(lora_path):
    return read_lora(lora_path)


LIVE = [synth.LINEAR_Q, synth.LINEAR_FF, synth.CONV3, synth.CONV1, synth.TE1_Q] + [synth.TE2.format(p) for p in "qkv"]


def test_sd_scripts_quirks_measured_in_the_reference_are_reproduced(lora):
    # resize.md section 2: sv_ratio 4 on 10^(-i/4) keeps 4 (3 exceed σ0/4); sv_fro 0.9 keeps 3.
    assert ranks(run(lora, sd_method(None, None, "sv_ratio", 4.0)))[synth.LINEAR_Q] == 4
    assert ranks(run(lora, sd_method(None, None, "sv_fro", 0.9)))[synth.LINEAR_Q] == 3


@pytest.mark.parametrize(
    "method,param,cap,conv_cap",
    [
        ("sv_ratio", 2.0, None, None),
        ("sv_ratio", 9.0, None, None),
        ("sv_ratio", 30.0, 6, None),
        ("sv_ratio", 30.0, 6, 2),
        ("sv_fro", 0.5, None, None),
        ("sv_fro", 0.99, None, None),
        ("sv_cumulative", 0.7, None, None),
        ("sv_cumulative", 0.95, 5, 3),
    ],
)
def test_dynamic_methods_pick_sd_scripts_rank_and_rebuild_the_truncated_svd(lora, method, param, cap, conv_cap):
    out = run(lora, sd_method(cap, conv_cap, method, param))
    got = ranks(out)
    for name in LIVE:
        dW = input_delta(lora, name)
        # sd-scripts caps Linear layers with --new_rank and conv layers with --new_conv_rank (default: the former)
        layer_cap = (conv_cap or cap) if lora.layers[name].is_conv else cap
        want = min(sd_scripts_rank(dW, method, param, layer_cap), lora.layers[name].rank)
        assert got[name] == want, name
        assert rel(rebuilt(out.tensors, name), truncated(dW, want)) < 1e-5, name


def test_fixed_rank_uses_conv_rank_for_every_4d_weight_and_rebuilds_the_truncated_svd(lora):
    out = run(lora, sd_method(5, 3, None, None))
    got = ranks(out)
    for name in LIVE:
        want = 3 if lora.layers[name].is_conv else 5
        assert got[name] == want, name
        dW = input_delta(lora, name)
        assert rel(rebuilt(out.tensors, name), truncated(dW, want)) < 1e-5, name
        # the per-rank scale alpha/r of the trained layer is kept
        assert float(out.tensors[f"{name}.alpha"]) == pytest.approx(lora.layers[name].scale * want)


def test_fixed_rank_above_the_trained_rank_never_grows_a_layer_and_copies_it_bit_for_bit(lora, lora_path):
    out = run(lora, sd_method(32, 32, None, None))
    with safe_open(str(lora_path), "pt") as fh:
        for name in LIVE:
            assert ranks(out)[name] == lora.layers[name].rank
            assert torch.equal(out.tensors[f"{name}.lora_up.weight"], fh.get_tensor(f"{name}.lora_up.weight"))
            assert torch.equal(out.tensors[f"{name}.lora_down.weight"], fh.get_tensor(f"{name}.lora_down.weight"))


def test_all_zero_layer_is_reported_and_left_out_by_every_method(lora, base_path):
    for sel in (sd_method(4, 4, None, None), sd_method(None, None, "sv_ratio", 4.0), parse_recipe("fro_lora=1,thr=-2")):
        out = run(lora, sel)
        zero = [r for r in out.results if r.name == synth.TE1_ZERO]
        assert zero[0].action == "zero"
        assert not any(k.startswith(synth.TE1_ZERO) for k in out.tensors)


def base_norms(base_path):
    with safe_open(str(base_path), "pt") as fh:
        w = {k: fh.get_tensor(k).float() for k in fh.keys()}
    U, T1, T2 = synth.UNET, synth.TE1P, synth.TE2P
    fused = w[T2 + "0.attn.in_proj_weight"]
    mats = {
        synth.LINEAR_Q: w[U + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight"],
        synth.LINEAR_FF: w[U + "input_blocks.4.1.transformer_blocks.0.ff.net.2.weight"],
        synth.CONV3: w[U + "input_blocks.4.0.in_layers.2.weight"],
        synth.CONV1: w[U + "input_blocks.4.0.skip_connection.weight"],
        synth.TE1_Q: w[T1 + "encoder.layers.0.self_attn.q_proj.weight"],
        # PyTorch MultiheadAttention order: q rows first, then k, then v.
        synth.TE2.format("q"): fused[:40],
        synth.TE2.format("k"): fused[40:80],
        synth.TE2.format("v"): fused[80:],
    }
    return {n: m.reshape(m.shape[0], -1).double() for n, m in mats.items()}


@pytest.mark.parametrize(
    "text",
    [
        "fro_ckpt=1,thr=-1.3",
        "fro_ckpt=1,thr=-3.55",
        "spn_ckpt=1,thr=-1.1",
        "fro_lora=1,thr=-1.2",
        "spn_lora=1,thr=-0.7",
        "params=1,thr=-2.9",
        "fro_ckpt=3,spn_lora=1,thr=-1.4",
        "fro_ckpt=1,thr=-1.3,rescale=1.5",
    ],
)
def test_recipe_keeps_exactly_the_directions_whose_score_reaches_the_threshold(lora, base_path, text):
    recipe = parse_recipe(text)
    out = run(lora, recipe, BaseCheckpoint(base_path))
    got = ranks(out)
    mats = base_norms(base_path)
    for name in LIVE:
        dW = input_delta(lora, name)
        S = torch.linalg.svdvals(dW)[: lora.layers[name].rank]
        refs = {
            "fro_ckpt": float(mats[name].norm()),
            "spn_ckpt": float(torch.linalg.matrix_norm(mats[name], ord=2)),
            "fro_lora": float(S.norm()),
            "spn_lora": float(S[0]),
            "params": float(dW.shape[0] + dW.shape[1]),
        }
        score = torch.log10(S * recipe.rescale) - sum(w * math.log10(refs[k]) for k, w in recipe.weights.items())
        want = int((score >= recipe.thr).sum())
        assert got[name] == want, name
        if 0 < want:
            assert rel(rebuilt(out.tensors, name), recipe.rescale * truncated(dW, want)) < 1e-5, name


def test_clip_g_q_k_v_are_scored_against_the_q_k_v_thirds_of_in_proj_in_that_order(lora, base_path):
    # Same spectrum on all three; the base thirds have norms 1, 10, 100, so q keeps the most directions.
    out = run(lora, parse_recipe("fro_ckpt=1,thr=-1.6"), BaseCheckpoint(base_path))
    got = ranks(out)
    q, k, v = (got[synth.TE2.format(p)] for p in "qkv")
    assert q > k > v


def test_subspace_score_compares_each_direction_with_the_base_acting_on_it(lora, base_path):
    recipe = parse_recipe("subspace=1,thr=0.3")
    out = run(lora, recipe, BaseCheckpoint(base_path))
    mats = base_norms(base_path)
    name = synth.LINEAR_FF
    U, S, Vh = torch.linalg.svd(input_delta(lora, name), full_matrices=False)
    r = lora.layers[name].rank
    along = ((U[:, :r].T @ mats[name]) * Vh[:r]).sum(1).abs()
    keep = torch.log10(S[:r]) - torch.log10(along) >= recipe.thr
    assert ranks(out)[name] == int(keep.sum())
    want = (U[:, :r][:, keep] * S[:r][keep]) @ Vh[:r][keep]
    assert rel(rebuilt(out.tensors, name), want) < 1e-5


def test_size_recipe_keeps_the_best_scored_directions_until_the_byte_budget_is_met(lora):
    recipe = parse_recipe("fro_lora=1,size=0.005")
    out = run(lora, recipe)
    kept, dropped, kept_bytes = [], [], 0
    for info_name, s in out.scores.items():
        layer = lora.layers[info_name]
        if info_name == synth.TE1_ZERO:
            continue
        k = ranks(out)[info_name]
        kept += s[:k].tolist()
        dropped += s[k:].tolist()
        kept_bytes += k * (layer.weight_shape[0] + layer.in_flat) * 4
    assert min(kept) >= max(dropped)
    budget = 0.005 * 2**20
    # reaches the target and overshoots by less than one direction of the largest layer
    assert budget <= kept_bytes < budget + (48 + 96) * 4 + (40 + 288) * 4


def test_save_precision_fp16_stores_fp16_tensors_and_keeps_the_update_within_fp16_accuracy(lora):
    out = run(lora, sd_method(4, 4, None, None), dtype=torch.float16)
    for name in LIVE:
        assert out.tensors[f"{name}.lora_up.weight"].dtype == torch.float16
        assert out.tensors[f"{name}.alpha"].dtype == torch.float16
        assert rel(rebuilt(out.tensors, name), truncated(input_delta(lora, name), 4)) < 3e-3


def test_base_norms_are_cached_per_checkpoint_and_a_rewritten_checkpoint_is_read_again(
    lora, base_path, private_norm_cache
):
    recipe = parse_recipe("fro_ckpt=1,thr=-1.3")
    first = ranks(run(lora, recipe, BaseCheckpoint(base_path)))
    (cache_file,) = (private_norm_cache / "base-norms").glob("*.json")
    cached = json.loads(cache_file.read_text())
    assert set(cached) == set(lora.layers) and all("fro" in v for v in cached.values())

    # The next run on the same file takes the norms from the cache (poisoned here to prove it).
    cache_file.write_text(json.dumps({k: {"fro": 1e-6} for k in cached}))
    again = ranks(run(lora, recipe, BaseCheckpoint(base_path)))
    assert all(again[n] == lora.layers[n].rank for n in LIVE)

    # A checkpoint saved again at the same path (same header and size, new contents) is read afresh.
    synth.save(base_path, synth.base_tensors(fro={n: 1e-3 for n in LIVE}))
    os.utime(base_path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    fresh = ranks(run(lora, recipe, BaseCheckpoint(base_path)))
    assert fresh[synth.LINEAR_Q] == lora.layers[synth.LINEAR_Q].rank
    assert first[synth.LINEAR_Q] < fresh[synth.LINEAR_Q]


def test_report_gives_the_share_of_the_updates_frobenius_norm_each_layer_keeps(lora):
    out = run(lora, sd_method(3, 2, None, None))
    for r in out.results:
        if r.action != "resized":
            continue
        S = torch.linalg.svdvals(input_delta(lora, r.name))
        assert r.fro_kept == pytest.approx(float(S[: r.rank_after].norm() / S.norm()), rel=1e-6)
