"""What the kohya_ss GUI does with a saved JSON before it builds a command: the one table of its defaults.

Read (not copied) from bmaltais/kohya_ss at GUI_COMMIT: the widgets of the LoRA tab and its shared
classes (kohya_gui/lora_gui.py, class_basic_training.py, class_advanced_training.py, class_source_model.py,
class_folders.py, class_accelerate_launch.py, class_sdxl_parameters.py, class_sample_images.py,
class_huggingface.py, class_metadata.py) and what it does when it opens a JSON (common_gui.update_my_data,
lora_gui.open_configuration). A key missing from the JSON, or null, keeps the widget's starting value; this
table is those values, for a GUI started without a user config.toml.
"""

from __future__ import annotations

from typing import Any

GUI_REPO = "bmaltais/kohya_ss"
GUI_COMMIT = "45088f04af78e11cec5407ff4652ea3ed2c14422"

# LoRA-tab field -> the value its widget starts with (what the GUI passes on when the JSON lacks the key)
FIELD_DEFAULTS: dict[str, Any] = {
    # model
    "pretrained_model_name_or_path": "runwayml/stable-diffusion-v1-5",
    "v2": False,
    "v_parameterization": False,
    "sdxl": False,
    "sd3_checkbox": False,
    "flux1_checkbox": False,
    "hunyuan_image_checkbox": False,
    "anima_checkbox": False,
    "lumina_checkbox": False,
    "dataset_config": "",
    "save_model_as": "safetensors",
    "save_precision": "fp16",
    "train_data_dir": "",
    "output_name": "last",
    "training_comment": "",
    # folders
    "output_dir": "",
    "reg_data_dir": "",
    "logging_dir": "",
    # basic training (the LoRA tab starts learning_rate at 1e-4, lr_scheduler at cosine, lr_warmup at 10%)
    "train_batch_size": 1,
    "epoch": 1,
    "max_train_epochs": 0,
    "max_train_steps": 1600,
    "save_every_n_epochs": 1,
    "caption_extension": ".txt",
    "seed": 0,
    "cache_latents": True,
    "cache_latents_to_disk": False,
    "lr_scheduler": "cosine",
    "lr_scheduler_type": "",
    "optimizer": "AdamW8bit",
    "max_grad_norm": 1.0,
    "lr_scheduler_args": "",
    "optimizer_args": "",
    "learning_rate": 0.0001,
    "lr_warmup": 10,
    "lr_warmup_steps": 0,
    "lr_scheduler_num_cycles": 1,
    "lr_scheduler_power": 1.0,
    "max_resolution": "512,512",
    "stop_text_encoder_training": 0,
    "enable_bucket": True,
    "min_bucket_reso": 256,
    "max_bucket_reso": 2048,
    "train_inpainting": False,
    # accelerate launch
    "mixed_precision": "fp16",
    "num_processes": 1,
    "num_machines": 1,
    "num_cpu_threads_per_process": 2,
    "dynamo_backend": "no",
    "dynamo_mode": "default",
    "dynamo_use_fullgraph": False,
    "dynamo_use_dynamic": False,
    "multi_gpu": False,
    "gpu_ids": "",
    "main_process_port": 0,
    "extra_accelerate_launch_args": "",
    # SDXL
    "sdxl_cache_text_encoder_outputs": False,
    "sdxl_no_half_vae": False,
    # samples
    "sample_every_n_steps": 0,
    "sample_every_n_epochs": 0,
    "sample_sampler": "euler_a",
    "sample_prompts": "",
    # huggingface, metadata
    "huggingface_repo_id": "",
    "huggingface_token": "",
    "huggingface_repo_type": "",
    "huggingface_repo_visibility": "",
    "huggingface_path_in_repo": "",
    "save_state_to_huggingface": False,
    "resume_from_huggingface": "",
    "async_upload": False,
    "metadata_author": "",
    "metadata_description": "",
    "metadata_license": "",
    "metadata_tags": "",
    "metadata_title": "",
    # advanced training
    "gradient_accumulation_steps": 1,
    "weighted_captions": False,
    "prior_loss_weight": 1.0,
    "vae": "",
    "additional_parameters": "",
    "save_every_n_steps": 0,
    "save_last_n_steps": 0,
    "save_last_n_steps_state": 0,
    "save_last_n_epochs": 0,
    "save_last_n_epochs_state": 0,
    "keep_tokens": 0,
    "clip_skip": 1,
    "max_token_length": 75,
    "fp8_base": False,
    "full_fp16": False,
    "full_bf16": False,
    "highvram": False,
    "lowvram": False,
    "skip_cache_check": False,
    "gradient_checkpointing": False,
    "shuffle_caption": False,
    "persistent_data_loader_workers": False,
    "mem_eff_attn": False,
    "xformers": "xformers",
    "color_aug": False,
    "flip_aug": False,
    "masked_loss": False,
    "scale_v_pred_loss_like_noise_pred": False,
    "min_snr_gamma": 0,
    "debiased_estimation_loss": False,
    "bucket_no_upscale": True,
    "bucket_reso_steps": 64,
    "random_crop": False,
    "v_pred_like_loss": 0,
    "min_timestep": 0,
    "max_timestep": 1000,
    "noise_offset_type": "Original",
    "caption_dropout_every_n_epochs": 0,
    "caption_dropout_rate": 0,
    "vae_batch_size": 0,
    "save_state": False,
    "save_state_on_train_end": False,
    "resume": "",
    "max_data_loader_n_workers": 0,
    "log_with": "",
    "wandb_api_key": "",
    "wandb_run_name": "",
    "log_config": False,
    "log_tracker_name": "",
    "log_tracker_config": "",
    "loss_type": "l2",
    "huber_schedule": "snr",
    "huber_c": 0.1,
    "huber_scale": 1.0,
    "noise_offset": 0,
    "noise_offset_random_strength": False,
    "adaptive_noise_scale": 0,
    "multires_noise_iterations": 0,
    "multires_noise_discount": 0.3,
    "ip_noise_gamma": 0,
    "ip_noise_gamma_random_strength": False,
    # LoRA network (text encoder and U-Net rates start at 1e-4 since the GUI's fix for GH #3388)
    "LoRA_type": "Standard",
    "LyCORIS_preset": "full",
    "text_encoder_lr": 0.0001,
    "t5xxl_lr": 0,
    "unet_lr": 0.0001,
    "loraplus_lr_ratio": 0,
    "loraplus_unet_lr_ratio": 0,
    "loraplus_text_encoder_lr_ratio": 0,
    "network_dim": 8,
    "network_alpha": 1,
    "conv_dim": 1,
    "conv_alpha": 1,
    "scale_weight_norms": 0,
    "network_dropout": 0,
    "rank_dropout": 0,
    "module_dropout": 0.0,
    "unit": 1,
    "factor": -1,
    "bypass_mode": False,
    "dora_wd": False,
    "use_cp": False,
    "use_tucker": False,
    "use_scalar": False,
    "rank_dropout_scale": False,
    "constrain": 0.0,
    "rescaled": False,
    "train_norm": False,
    "decompose_both": False,
    "train_on_input": True,
    "network_weights": "",
    "dim_from_weights": False,
    "down_lr_weight": "",
    "mid_lr_weight": "",
    "up_lr_weight": "",
    "block_lr_zero_threshold": "",
    "block_dims": "",
    "block_alphas": "",
    "conv_block_dims": "",
    "conv_block_alphas": "",
    "train_lora_ggpo": False,
}

# Conversions the GUI applies to the JSON's own values when it opens the file: field -> (type, value it uses
# when the text is not a number). So "" becomes 0 for epoch, 1 for lr_scheduler_num_cycles, 75 tokens, ...
LOAD_CONVERSIONS: dict[str, tuple[type, int | float]] = {
    **{
        k: (int, 0)
        for k in (
            "clip_skip",
            "epoch",
            "gradient_accumulation_steps",
            "keep_tokens",
            "lr_warmup",
            "max_data_loader_n_workers",
            "max_train_epochs",
            "save_every_n_epochs",
            "seed",
            "max_train_steps",
            "caption_dropout_every_n_epochs",
        )
    },
    "lr_scheduler_num_cycles": (int, 1),
    "max_token_length": (int, 75),
    **{
        k: (float, 0.0) for k in ("adaptive_noise_scale", "noise_offset", "learning_rate", "text_encoder_lr", "unet_lr")
    },
    "lr_scheduler_power": (float, 1.0),
}

# Renamed on load: the old key's value moves to the new key
RENAMED_ON_LOAD = {"lora_network_weights": "network_weights"}

# The GUI's training tabs, the keys only their JSON files hold, and the scripts they run (SD 1.x/2.x, SDXL)
TABS: dict[str, tuple[frozenset[str], str, str]] = {
    "Textual Inversion": (
        frozenset({"num_vectors_per_token", "token_string", "init_word", "template"}),
        "train_textual_inversion.py",
        "sdxl_train_textual_inversion.py",
    ),
    "Finetuning": (
        frozenset(
            {
                "train_dir",
                "image_folder",
                "full_path",
                "create_caption",
                "create_buckets",
                "caption_metadata_filename",
                "latent_metadata_filename",
                "use_latent_files",
                "dataset_repeats",
                "train_text_encoder",
                "block_lr",
                "sdxl_checkbox",
            }
        ),
        "fine_tune.py",
        "sdxl_train.py",
    ),
    "LoRA": (
        frozenset(
            {
                "LoRA_type",
                "network_dim",
                "network_alpha",
                "text_encoder_lr",
                "unet_lr",
                "conv_dim",
                "LyCORIS_preset",
                "network_weights",
                "lora_network_weights",
            }
        ),
        "train_network.py",
        "sdxl_train_network.py",
    ),
    # no key of its own: a GUI JSON with training settings and none of the above
    "Dreambooth": (frozenset(), "train_db.py", "sdxl_train.py"),
}

# The model checkboxes after sdxl, in the order the LoRA tab tries them, with the script each one runs
OTHER_MODEL_SCRIPTS = {
    "flux1_checkbox": "flux_train_network.py",
    "sd3_checkbox": "sd3_train_network.py",
    "hunyuan_image_checkbox": "hunyuan_image_train_network.py",
    "anima_checkbox": "anima_train_network.py",
    "lumina_checkbox": "lumina_train_network.py",
}
# LoRA types that belong to another model family (the GUI refuses them without their own model checkbox)
NON_SDXL_LORA_TYPES = frozenset({"Flux1", "Flux1 OFT", "Anima", "Lumina", "HunyuanImage-2.1"})
