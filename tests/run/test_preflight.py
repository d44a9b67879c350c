"""Each preflight check on real files: what a user gets told before any GPU time is spent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import FIXTURE_SD_SCRIPTS, SD1_KEYS, SDXL_KEYS, make_dataset, write_image, write_safetensors

from loratrain.launch import gpus, preflight
from loratrain.launch.gpus import Gpu, GpuScan
from loratrain.launch.preflight import PreflightInput, run_preflight

A100 = Gpu(0, "NVIDIA A100-SXM4-40GB", 8.0)
T4 = Gpu(0, "Tesla T4", 7.5)


def scan_of(*gpus: Gpu) -> GpuScan:
    return GpuScan([Gpu(i, g.name, g.compute_cap) for i, g in enumerate(gpus)], "test")


@pytest.fixture
def good(tmp_path: Path, without_environment_probe) -> PreflightInput:
    """A setup with nothing wrong; each test breaks one thing (not the training environment: see below)."""
    return good_setup(tmp_path)


@pytest.fixture
def good_with_environment(tmp_path: Path) -> PreflightInput:
    """The same setup, and preflight also runs the training-environment check (the doctor probe, seconds)."""
    return good_setup(tmp_path)


def good_setup(tmp_path: Path) -> PreflightInput:
    model = write_safetensors(tmp_path / "sdxl.safetensors", SDXL_KEYS)
    data = make_dataset(tmp_path / "train", {"10_mychar": 2})
    cache = tmp_path / "tok"
    for name in preflight.TOKENIZER_FOLDERS:
        (cache / name).mkdir(parents=True)
    args = {
        "pretrained_model_name_or_path": str(model),
        "train_data_dir": str(data),
        "caption_extension": ".txt",
        "output_dir": str(tmp_path / "out"),
        "output_name": "mychar",
        "network_module": "networks.lora",
        "tokenizer_cache_dir": str(cache),
        "resolution": "1024,1024",
    }
    return PreflightInput(
        args=args,
        accelerate={},
        python=sys.executable,
        sd_scripts=FIXTURE_SD_SCRIPTS,
        env={"PATH": os.environ.get("PATH", "")},
        cwd=tmp_path,
        config_file="run.toml",
        gpu_scanner=lambda: scan_of(A100),
    )


def with_args(inp: PreflightInput, **changes) -> PreflightInput:
    args = dict(inp.args)
    for k, v in changes.items():
        if v is None:
            args.pop(k, None)
        else:
            args[k] = v
    inp.args = args
    return inp


def errors_of(inp: PreflightInput) -> list[str]:
    return [p.render() for p in run_preflight(inp) if p.severity == "error"]


def warnings_of(inp: PreflightInput) -> list[str]:
    return [p.render() for p in run_preflight(inp) if p.severity == "warning"]


def test_a_complete_setup_passes_preflight_without_errors_or_warnings(good_with_environment):
    assert run_preflight(good_with_environment) == []


# ---- model


def test_missing_model_file_is_an_error_naming_the_path(good, tmp_path):
    with_args(good, pretrained_model_name_or_path=str(tmp_path / "nope.safetensors"))
    (msg,) = errors_of(good)
    assert "nope.safetensors does not exist" in msg and "pretrained_model_name_or_path" in msg


def test_sd15_checkpoint_is_rejected_for_the_sdxl_script(good, tmp_path):
    sd1 = write_safetensors(tmp_path / "v1-5.safetensors", SD1_KEYS)
    with_args(good, pretrained_model_name_or_path=str(sd1))
    (msg,) = errors_of(good)
    assert "Stable Diffusion 1.x" in msg and "not an SDXL checkpoint" in msg


def test_a_lora_file_given_as_base_model_is_rejected(good, tmp_path):
    lora = write_safetensors(tmp_path / "adapter.safetensors", ["lora_unet_down_blocks_0.lora_down.weight"])
    with_args(good, pretrained_model_name_or_path=str(lora))
    assert any("LoRA/LyCORIS adapter" in m for m in errors_of(good))


def test_a_truncated_safetensors_file_is_reported_as_unreadable(good, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\xff\xff\xff\x00\x00\x00\x00\x00{")
    with_args(good, pretrained_model_name_or_path=str(broken))
    (msg,) = errors_of(good)
    assert "not a readable safetensors file" in msg


def test_a_folder_without_model_index_is_not_a_diffusers_model(good, tmp_path):
    folder = tmp_path / "some_folder"
    folder.mkdir()
    with_args(good, pretrained_model_name_or_path=str(folder))
    (msg,) = errors_of(good)
    assert "no model_index.json" in msg


def test_a_diffusers_sdxl_folder_and_a_ckpt_file_are_accepted(good, tmp_path):
    folder = tmp_path / "sdxl-diffusers"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')
    with_args(good, pretrained_model_name_or_path=str(folder))
    assert errors_of(good) == []
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"PK")
    with_args(good, pretrained_model_name_or_path=str(ckpt))
    assert errors_of(good) == []


def test_a_model_file_with_another_extension_is_an_error(good, tmp_path):
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    with_args(good, pretrained_model_name_or_path=str(odd))
    assert any("neither .safetensors nor .ckpt" in m for m in errors_of(good))


def test_a_hub_repo_id_as_model_is_a_warning_about_the_download(good):
    with_args(good, pretrained_model_name_or_path="stabilityai/stable-diffusion-xl-base-1.0")
    (msg,) = warnings_of(good)
    assert "not a local path" in msg and errors_of(good) == []


def test_missing_vae_file_is_an_error(good, tmp_path):
    with_args(good, vae=str(tmp_path / "sdxl_vae.safetensors"))
    (msg,) = errors_of(good)
    assert "VAE" in msg and "sdxl_vae.safetensors does not exist" in msg


# ---- dataset


def test_missing_train_data_dir_is_an_error(good, tmp_path):
    with_args(good, train_data_dir=str(tmp_path / "missing"))
    assert any("missing does not exist" in m for m in errors_of(good))


def test_empty_dataset_is_an_error_because_sd_scripts_would_exit_0_without_training(good, tmp_path):
    empty = tmp_path / "empty"
    (empty / "10_nothing").mkdir(parents=True)
    with_args(good, train_data_dir=str(empty))
    errors = errors_of(good)
    assert any("10_nothing" in m and "no images" in m for m in errors)


def test_folder_without_repeat_prefix_is_reported_as_ignored(good, tmp_path):
    data = Path(good.args["train_data_dir"])
    (data / "extra").mkdir()
    write_image(data / "extra" / "a.png")
    assert any("'extra' has no repeat count (N_name)" in m and "10_extra" in m for m in warnings_of(good))


def test_images_placed_directly_in_train_data_dir_are_an_error(good, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    write_image(flat / "a.png")
    with_args(good, train_data_dir=str(flat))
    assert any("no N_name image folders in" in m and "put images in e.g. 10_mychar/" in m for m in errors_of(good))


def test_images_without_captions_are_a_warning_naming_the_extension(good):
    with_args(good, caption_extension=".caption")  # the dataset has .txt captions
    warnings = warnings_of(good)
    assert any(
        "2 of 2 images have no .caption caption" in m and 'set caption_extension = ".txt"' in m for m in warnings
    )
    assert errors_of(good) == []


def test_an_empty_caption_file_is_an_error(good):
    caption = Path(good.args["train_data_dir"]) / "10_mychar" / "img0.txt"
    caption.write_bytes(b"")  # sd-scripts stops on a zero-byte caption file
    assert any("empty caption file" in m and "img0.txt" in m for m in errors_of(good))


def test_dataset_config_with_an_unknown_key_is_an_error_with_a_suggestion(good, tmp_path):
    images = Path(good.args["train_data_dir"]) / "10_mychar"
    cfg = tmp_path / "dataset.toml"
    cfg.write_text(
        f'[general]\ncaption_extension = ".txt"\n[[datasets]]\nresolution = 1024\nbatch_sise = 2\n'
        f'  [[datasets.subsets]]\n  image_dir = "{images}"\n  num_repeats = 3\n'
    )
    with_args(good, dataset_config=str(cfg), train_data_dir=None)
    (msg,) = errors_of(good)
    assert "datasets[0].batch_sise: unknown key" in msg and "did you mean 'batch_size'" in msg


def test_dataset_config_pointing_at_a_missing_image_dir_is_an_error(good, tmp_path):
    cfg = tmp_path / "dataset.toml"
    cfg.write_text(f'[[datasets]]\n  [[datasets.subsets]]\n  image_dir = "{tmp_path / "gone"}"\n')
    with_args(good, dataset_config=str(cfg), train_data_dir=None)
    assert any("gone" in m and "image folder does not exist" in m for m in errors_of(good))


def test_a_valid_dataset_config_passes(good, tmp_path):
    images = Path(good.args["train_data_dir"]) / "10_mychar"
    cfg = tmp_path / "dataset.toml"
    cfg.write_text(
        f'[general]\ncaption_extension = ".txt"\nshuffle_caption = true\n[[datasets]]\nresolution = 1024\nbatch_size = 2\n'
        f'  [[datasets.subsets]]\n  image_dir = "{images}"\n  num_repeats = 3\n'
    )
    with_args(good, dataset_config=str(cfg), train_data_dir=None)
    assert run_preflight(good) == []


# ---- outputs


def test_existing_output_file_is_not_overwritten_without_force(good):
    out = Path(good.args["output_dir"])
    out.mkdir()
    (out / "mychar.safetensors").write_bytes(b"precious")
    (msg,) = errors_of(good)
    assert "mychar.safetensors already exists" in msg and "--force" in msg
    good.force = True
    assert errors_of(good) == []


def test_output_dir_under_a_file_is_not_writable(good, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("I am a file")
    with_args(good, output_dir=str(blocker / "out"))
    assert any("cannot be written" in m and "is a file" in m for m in errors_of(good))


def test_missing_output_dir_is_an_error(good):
    with_args(good, output_dir=None)
    assert any("no output_dir" in m for m in errors_of(good))


def test_sample_prompts_with_a_wrong_extension_is_an_error(good, tmp_path):
    prompts = tmp_path / "prompts.md"
    prompts.write_text("a photo of mychar\n")
    with_args(good, sample_prompts=str(prompts))
    assert any("prompts.md" in m and "only .txt, .toml or .json" in m for m in errors_of(good))


def test_missing_sample_prompts_file_is_an_error(good, tmp_path):
    with_args(good, sample_prompts=str(tmp_path / "prompts.txt"))
    assert any("prompts.txt" in m and "sample prompt file not found" in m for m in errors_of(good))


def test_unwritable_logging_dir_is_an_error(good, tmp_path):
    blocker = tmp_path / "logs-file"
    blocker.write_text("")
    with_args(good, logging_dir=str(blocker / "tb"))
    assert any("logging_dir" in m and "cannot be written" in m for m in errors_of(good))


# ---- tokenizers, network module


def test_missing_tokenizer_cache_is_a_warning_about_the_download(good, tmp_path):
    with_args(good, tokenizer_cache_dir=str(tmp_path / "empty-cache"))
    (msg,) = warnings_of(good)
    assert "openai_clip-vit-large-patch14" in msg and "downloads them" in msg


def test_missing_tokenizer_cache_is_an_error_when_hf_hub_offline_is_set(good):
    with_args(good, tokenizer_cache_dir=None)
    good.env = {**good.env, "HF_HUB_OFFLINE": "1"}
    assert any("HF_HUB_OFFLINE is set" in m for m in errors_of(good))


def test_network_module_that_the_training_python_cannot_find_is_an_error(good_with_environment):
    with_args(good_with_environment, network_module="lycoris_missing.kohya")
    (msg,) = errors_of(good_with_environment)
    # LyCORIS is installed in this interpreter, so the name is the mistake, not a missing package
    assert "lycoris_missing.kohya cannot be imported" in msg and '"lycoris.kohya"' in msg
    assert "pip install" not in msg


def test_lycoris_network_module_is_found_in_the_training_interpreter(good_with_environment):
    with_args(good_with_environment, network_module="lycoris.kohya")
    assert errors_of(good_with_environment) == []


# ---- GPUs


def test_more_processes_than_gpus_is_an_error(good):
    good.accelerate = {"num_processes": 2}
    (msg,) = errors_of(good)
    assert "2 training process(es)" in msg and "1 visible GPU" in msg


def test_gpu_ids_that_do_not_exist_are_an_error(good):
    good.gpu_scanner = lambda: scan_of(A100, A100)
    good.accelerate = {"num_processes": 2, "gpu_ids": "1,2"}
    assert any("names GPU 2" in m and "2 GPU(s) (0..1)" in m for m in errors_of(good))


def test_auto_processes_use_every_visible_gpu_and_pass(good):
    good.gpu_scanner = lambda: scan_of(A100, A100, A100)
    good.accelerate = {"num_processes": "auto"}
    assert errors_of(good) == []
    assert gpus.local_process_count(good.accelerate, good.gpu_scan()) == 3


def test_auto_counts_the_listed_gpu_ids_and_multiplies_by_the_machines_for_the_total():
    scan = scan_of(A100, A100, A100, A100)
    assert gpus.total_processes({"num_processes": "auto", "gpu_ids": "1,3"}, scan) == 2
    assert gpus.total_processes({"num_processes": "auto", "num_machines": 2}, scan) == 8
    assert gpus.local_process_count({"num_processes": 8, "num_machines": 2}, scan) == 4
    assert gpus.total_processes({}, scan) == 1  # accelerate's own default


def test_bf16_on_a_gpu_without_bf16_is_an_error(good):
    good.gpu_scanner = lambda: scan_of(T4)
    with_args(good, mixed_precision="bf16")
    (msg,) = errors_of(good)
    assert "Tesla T4" in msg and "compute capability 8.0" in msg and "fp16" in msg


def test_accelerate_bf16_alone_does_not_demand_a_bf16_gpu_since_sd_scripts_passes_its_own_precision(good):
    # sd-scripts hands its own --mixed_precision to Accelerator, so accelerate's setting does not decide.
    good.gpu_scanner = lambda: scan_of(T4)
    good.accelerate = {"mixed_precision": "bf16"}
    with_args(good, mixed_precision="fp16")
    assert errors_of(good) == []
    with_args(good, mixed_precision=None)
    assert errors_of(good) == []
    with_args(good, mixed_precision="bf16")
    assert any("Tesla T4" in m for m in errors_of(good))


def test_multi_machine_run_without_main_process_ip_is_an_error(good):
    good.accelerate = {"num_processes": 2, "num_machines": 2}
    assert any("main_process_ip" in m for m in errors_of(good))


def test_gpu_count_comes_from_a_fake_nvidia_smi_on_path(good, tmp_path):
    from helpers import write_fake_nvidia_smi

    bin_dir = tmp_path / "bin"
    write_fake_nvidia_smi(bin_dir, [("Tesla V100-SXM2-16GB", "7.0"), ("Tesla V100-SXM2-16GB", "7.0")])
    good.gpu_scanner = None
    good.env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    good.accelerate = {"num_processes": 4}
    with_args(good, mixed_precision="bf16")
    errors = errors_of(good)
    assert any("4 training process(es)" in m and "2 visible GPU" in m for m in errors)
    assert any("bf16" in m and "V100" in m for m in errors)


# ---- disk


def test_disk_cache_larger_than_the_free_space_is_a_warning(good, monkeypatch):
    with_args(good, cache_latents_to_disk=True)
    real = preflight.shutil.disk_usage

    def tiny_disk(path):
        usage = real(path)
        return type(usage)(usage.total, usage.used, 1000)

    monkeypatch.setattr(preflight.shutil, "disk_usage", tiny_disk)
    (msg,) = warnings_of(good)
    assert "disk caches" in msg and "only 1000 B is free" in msg


def test_cache_estimate_grows_with_resolution_flip_and_text_encoder_outputs(good):
    with_args(good, cache_latents_to_disk=True)
    base = preflight.cache_estimate(good, 10)
    assert base > 10 * 4 * 128 * 128 * 4  # float32 SDXL latents at 1024x1024
    with_args(good, flip_aug=True, cache_text_encoder_outputs_to_disk=True)
    assert preflight.cache_estimate(good, 10) > 2 * base
