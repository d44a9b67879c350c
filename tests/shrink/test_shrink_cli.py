"""`python -m loratrain shrink` end to end: outputs, report, plot, and every class of bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import helpers as synth
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file


def outputs(folder):
    return sorted(p.name for p in folder.glob("*.safetensors"))


def assert_refused(proc, *needles):
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_guide_recipe_with_base_writes_a_smaller_file_and_reports_every_layer_as_json(cli, lora_path, base_path):
    proc = cli(lora_path, "--base", base_path, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["outputs"][0]
    out = lora_path.parent / "lora_frockpt1_th-3.55.safetensors"
    assert report["output"] == str(out) and out.is_file()
    assert report["selection"] == "fro_ckpt=1,thr=-3.55"
    assert report["file_size_after"] == out.stat().st_size < report["file_size_before"]
    rows = {r["name"]: r for r in report["per_layer"]}
    assert rows[synth.TE1_ZERO]["action"] == "zero" and report["zero_layers"] == [synth.TE1_ZERO]
    assert all(r["rank_after"] <= r["rank_before"] for r in rows.values())
    assert all(0.0 <= r["fro_kept"] <= 1.0 for r in rows.values())
    written = load_file(str(out))
    for name, row in rows.items():
        if row["rank_after"]:
            assert written[f"{name}.lora_down.weight"].shape[0] == row["rank_after"]


def test_text_report_lists_ranks_share_kept_and_totals(cli, lora_path):
    proc = cli(lora_path, "--rank", "4", "--conv-rank", "2", "-o", lora_path.parent / "r4.safetensors")
    assert proc.returncode == 0, proc.stderr
    assert f"{synth.LINEAR_Q}" in proc.stdout and "16->4" in proc.stdout
    assert "file " in proc.stdout and "MiB" in proc.stdout
    assert "all-zero layers: " + synth.TE1_ZERO in proc.stdout


def test_several_recipes_give_one_output_each_from_one_run_and_a_plot_each(cli, lora_path, tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    proc = cli(lora_path, "-r", "fro_lora=1,thr=-1:spn_lora=1,thr=-0.7", "-o", outdir, "--plot", outdir / "spec.png")
    assert proc.returncode == 0, proc.stderr
    assert outputs(outdir) == ["lora_frolora1_th-1.safetensors", "lora_spnlora1_th-0.7.safetensors"]
    for png in ("spec_frolora1_th-1.png", "spec_spnlora1_th-0.7.png"):
        with Image.open(outdir / png) as img:
            assert img.format == "PNG" and img.size == (1200, 720)


def test_not_a_safetensors_file_is_refused(cli, tmp_path):
    bad = tmp_path / "notes.safetensors"
    bad.write_text("this is not a tensor file\n")
    assert_refused(cli(bad, "--rank", "4"), "not a readable safetensors file", str(bad))
    assert outputs(tmp_path) == ["notes.safetensors"]


def test_a_safetensors_file_without_lora_layers_is_refused(cli, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"model.diffusion_model.out.2.weight": torch.zeros(4, 4)}, str(path))
    assert_refused(cli(path, "--rank", "4"), "not a LoRA")
    assert outputs(tmp_path) == ["model.safetensors"]


def test_a_base_that_is_not_sdxl_is_refused(cli, lora_path, tmp_path):
    sd15 = synth.save(tmp_path / "sd15.safetensors", synth.base_tensors(sdxl=False))
    assert_refused(cli(lora_path, "--base", sd15), "not an SDXL base checkpoint", "--base")
    assert not list(tmp_path.glob("lora_*"))


def test_a_base_that_does_not_match_the_loras_layers_is_refused(cli, lora_path, tmp_path):
    t = synth.base_tensors()
    t[synth.UNET + "input_blocks.4.0.in_layers.2.weight"] = torch.zeros(40, 16, 3, 3, dtype=torch.float16)
    del t[synth.TE1P + "encoder.layers.0.self_attn.q_proj.weight"]
    other = synth.save(tmp_path / "other.safetensors", t)
    proc = cli(lora_path, "--base", other)
    assert_refused(proc, "1 of 9 LoRA layers have no weight in the base", "do not match the base's weight shapes")
    assert not list(tmp_path.glob("lora_*"))


def test_a_recipe_scoring_against_the_checkpoint_without_base_says_to_give_base(cli, lora_path):
    assert_refused(cli(lora_path), "--base", "fro_ckpt=1,thr=-3.55")
    assert_refused(cli(lora_path, "-r", "fro_lora=1,thr=-1:subspace=1,thr=0"), "--base")
    assert outputs(lora_path.parent) == ["lora.safetensors"]


def test_an_existing_output_is_not_overwritten_without_force(cli, lora_path, tmp_path):
    out = tmp_path / "keep.safetensors"
    out.write_bytes(b"precious")
    assert_refused(cli(lora_path, "--rank", "4", "-o", out), "output file exists", "--force")
    assert out.read_bytes() == b"precious"
    proc = cli(lora_path, "--rank", "4", "-o", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert load_file(str(out))[f"{synth.LINEAR_Q}.lora_down.weight"].shape == (4, 48)


@pytest.mark.parametrize(
    "recipe,needle",
    [
        ("fro_ckpt=1,thr=abc", "is not a number"),
        ("fro_ckpt=1", "neither thr= nor size="),
        ("frob=1,thr=-3", "unknown item 'frob'"),
        ("thr=-3", "no score weight is non-zero"),
        ("fro_lora=1,thr", "thr needs a value"),
        ("fro_lora=1,thr=-1::spn_lora=1,thr=-1", "empty recipe"),
    ],
)
def test_bad_recipe_text_is_refused_with_what_is_wrong(cli, lora_path, recipe, needle):
    assert_refused(cli(lora_path, "-r", recipe), needle)
    assert outputs(lora_path.parent) == ["lora.safetensors"]


def test_bad_method_arguments_are_refused(cli, lora_path):
    assert_refused(cli(lora_path, "--dynamic-method", "sv_magic", "--dynamic-param", "2"), "unknown dynamic method")
    assert_refused(cli(lora_path, "--dynamic-method", "sv_fro"), "needs a positive --dynamic-param")
    assert_refused(cli(lora_path, "--rank", "4", "-r", "fro_lora=1,thr=-1"), "cannot be combined")
    assert_refused(cli(lora_path, "--rank", "4", "--save-precision", "fp8"), "unknown precision")
    assert_refused(cli(lora_path, "--rank", "4", "--device", "no-such-device"), "unusable torch device")
    two = "fro_lora=1,thr=-1:spn_lora=1,thr=-1"
    assert_refused(cli(lora_path, "-r", two, "-o", lora_path.parent / "x.safetensors"), "give a folder to -o")
    assert outputs(lora_path.parent) == ["lora.safetensors"]


def test_a_loha_file_is_refused_unless_other_layers_may_be_copied(cli, tmp_path):
    gen = torch.Generator().manual_seed(8)
    t = {}
    synth.add(t, synth.LINEAR_Q, synth.known_layer(64, 48, synth.geometric(16), 8.0, gen))
    synth.add(t, synth.LINEAR_FF, synth.loha_layer(48, 96, 4, gen))
    src = synth.save(tmp_path / "loha.safetensors", t)
    assert_refused(cli(src, "--rank", "4"), "not LoRA/LoCon (loha", "--keep-other")
    assert outputs(tmp_path) == ["loha.safetensors"]
    proc = cli(src, "--rank", "4", "--keep-other")
    assert proc.returncode == 0, proc.stderr
    assert "loha layer copied unchanged" in proc.stdout


def test_importing_the_command_does_not_import_torch():
    code = "import sys, loratrain.cli, loratrain.commands.shrink; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr


def test_output_keeps_the_inputs_precision_unless_save_precision_says_otherwise(cli, tmp_path):
    gen = torch.Generator().manual_seed(9)
    layer = synth.known_layer(64, 48, synth.geometric(16), 8.0, gen)
    src = synth.save(tmp_path / "half.safetensors", {f"{synth.LINEAR_Q}.{k}": v.half() for k, v in layer.items()})
    assert cli(src, "--rank", "4", "-o", tmp_path / "same.safetensors").returncode == 0
    assert {v.dtype for v in load_file(str(tmp_path / "same.safetensors")).values()} == {torch.float16}
    assert cli(src, "--rank", "4", "--save-precision", "bf16", "-o", tmp_path / "bf.safetensors").returncode == 0
    assert {v.dtype for v in load_file(str(tmp_path / "bf.safetensors")).values()} == {torch.bfloat16}
