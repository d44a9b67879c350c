"""Every config field carries a description: it is the one source for explain, --help and the schema."""

from __future__ import annotations

from pydantic import BaseModel

from loratrain.schema.accelerate import AccelerateArgs
from loratrain.schema.network_args import LoraArgs, LycorisArgs
from loratrain.schema.root import SCRIPT_GROUPS, ExtraArgs, TrainConfig
from loratrain.sdscripts import flags

GUIDE_FLAGS = """lowram pretrained_model_name_or_path output_dir train_data_dir resolution enable_bucket
bucket_no_upscale min_bucket_reso max_bucket_reso bucket_reso_steps network_module network_dim network_alpha
network_dropout network_args lr_scheduler lr_scheduler_num_cycles learning_rate unet_lr text_encoder_lr output_name
scale_weight_norms max_grad_norm no_half_vae save_every_n_epochs save_last_n_epochs save_every_n_steps
save_last_n_steps mixed_precision save_precision caption_extension caption_separator cache_latents
cache_latents_to_disk cache_text_encoder_outputs cache_text_encoder_outputs_to_disk optimizer_type dataset_repeats
max_train_steps max_train_epochs shuffle_caption keep_tokens sdpa xformers mem_eff_attn multires_noise_iterations
multires_noise_discount noise_offset sample_prompts sample_sampler sample_every_n_steps sample_every_n_epochs
log_prefix log_with logging_dir gradient_accumulation_steps gradient_checkpointing train_batch_size
max_data_loader_n_workers network_train_unet_only tokenizer_cache_dir seed save_model_as""".split()


def _models() -> list[type[BaseModel]]:
    return [TrainConfig, AccelerateArgs, LycorisArgs, LoraArgs, ExtraArgs, *SCRIPT_GROUPS.values()]


def test_every_field_of_every_model_has_a_description():
    missing = [
        f"{m.__name__}.{n}"
        for m in _models()
        for n, f in m.model_fields.items()
        if n != "kind" and not (f.description or "").strip()
    ]
    assert missing == []


def test_every_flag_the_guide_documents_is_a_typed_field():
    typed = {name for group in SCRIPT_GROUPS.values() for name in group.model_fields}
    assert [f for f in GUIDE_FLAGS if f not in typed] == []


def test_every_sd_scripts_flag_is_reachable_exactly_once():
    typed = {name for group in SCRIPT_GROUPS.values() for name in group.model_fields}
    extra = set(ExtraArgs.model_fields)
    assert typed & extra == set()
    from loratrain.schema.extra import NOT_ALLOWED

    assert set(flags.all_flags()) == typed | extra | set(NOT_ALLOWED)
    assert extra & set(NOT_ALLOWED) == set()
    assert len(flags.all_flags()) == 196  # 197 actions less argparse's own --help


def test_json_schema_carries_the_descriptions():
    schema = TrainConfig.model_json_schema()
    text = str(schema)
    assert "Rank of the adapter" in text and "LyCORIS algorithm" in text
