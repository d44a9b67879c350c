"""The shipped Pony config renders the guide's full command, except for the documented differences."""

from __future__ import annotations

from helpers import CONFIGS, parse_changed

from loratrain.config.loader import load_config
from loratrain.render import build_command

# The guide's script arguments, flag for flag (paths replaced by the config's placeholders).
BLOCKS = ",".join(["8"] * 25)
ALPHAS = ",".join(["0.0625"] * 25)
GUIDE_ARGV = [
    "--lowram",
    "--pretrained_model_name_or_path=/path/to/ponydiffusers/",
    "--train_data_dir=/path/to/training_dir",
    "--resolution=1024,1024",
    "--output_dir=/path/to/output_dir",
    "--enable_bucket",
    "--min_bucket_reso=256",
    "--max_bucket_reso=1024",
    "--network_alpha=4",
    "--save_model_as=safetensors",
    "--network_module=lycoris.kohya",
    "--network_args",
    "preset=full",
    "conv_dim=256",
    "conv_alpha=4",
    "use_tucker=False",
    "use_scalar=False",
    "rank_dropout_scale=False",
    "algo=locon",
    "train_norm=False",
    f"block_dims={BLOCKS}",
    f"block_alphas={ALPHAS}",
    "--network_dropout=0",
    "--lr_scheduler=cosine",
    "--learning_rate=0.0001",
    "--unet_lr=0.0001",
    "--text_encoder_lr=0.0001",
    "--network_dim=8",
    "--output_name=yifftoolkit",
    "--scale_weight_norms=1",
    "--no_half_vae",
    "--save_every_n_epochs=50",
    "--mixed_precision=fp16",
    "--save_precision=fp16",
    "--caption_extension=.txt",
    "--cache_latents",
    "--cache_latents_to_disk",
    "--optimizer_type=AdamW",
    "--max_grad_norm=1",
    "--keep_tokens=1",
    "--max_data_loader_n_workers=8",
    "--bucket_reso_steps=32",
    "--multires_noise_iterations=10",
    "--multires_noise_discount=0.1",
    "--log_prefix=xl-locon",
    "--gradient_accumulation_steps=6",
    "--gradient_checkpointing",
    "--train_batch_size=8",
    "--dataset_repeats=0",
    "--max_train_steps=400",
    "--shuffle_caption",
    "--sdpa",
    "--sample_prompts=/path/to/training_dir/sample-prompts.txt",
    "--sample_sampler=euler_a",
    "--sample_every_n_steps=100",
]
# What the config leaves out on purpose (each explained in its header comment), and what it adds.
DROPPED_ARGS = {"rank_dropout_scale", "block_dims", "block_alphas"}
DROPPED_FLAGS = {"dataset_repeats"}
ADDED_FLAGS = {"logging_dir"}


def _split_args(items):
    return {item.split("=", 1)[0]: item.split("=", 1)[1] for item in items}


def test_pony_config_parses_to_the_guides_values_except_the_documented_differences():
    cmd = build_command(load_config(CONFIGS / "pony-sdxl-locon.toml").config, "/sd")
    script_at = cmd.argv.index("/sd/sdxl_train_network.py")
    ours = parse_changed(cmd.argv[script_at + 1 :])
    guide = parse_changed(GUIDE_ARGV)

    ours_args = _split_args(ours.pop("network_args"))
    guide_args = _split_args(guide.pop("network_args"))
    assert set(guide_args) - set(ours_args) == DROPPED_ARGS
    # Numbers may be spelled differently ("4" vs "4.0"); LyCORIS converts both the same way.
    for key, value in ours_args.items():
        assert float(value) == float(guide_args[key]) if value[0].isdigit() else value == guide_args[key], key

    assert set(guide) - set(ours) == DROPPED_FLAGS
    assert set(ours) - set(guide) == ADDED_FLAGS
    for key in guide.keys() & ours.keys():
        assert ours[key] == guide[key], key


def test_guide_accelerate_option_is_kept_and_every_other_is_explicit():
    cmd = build_command(load_config(CONFIGS / "pony-sdxl-locon.toml").config, "/sd")
    head = cmd.argv[: cmd.argv.index("/sd/sdxl_train_network.py")]
    assert head[:2] == ["accelerate", "launch"]
    assert "--num_cpu_threads_per_process=2" in head
    assert {"--num_processes=1", "--num_machines=1", "--mixed_precision=fp16", "--dynamo_backend=no"} <= set(head)
