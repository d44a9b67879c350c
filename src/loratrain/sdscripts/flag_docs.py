"""What each pass-through sd-scripts flag does: the texts `explain` and `schema` show for `[extra]` keys.

The one home of these texts. A flag with a typed home in a config table (`schema/`) is documented by that
field's `flag(description, advice=...)` instead and has no entry here; tests/test_flag_docs.py checks that
every pass-through flag has exactly one text and no typed flag has one.

Facts were checked against kohya-ss/sd-scripts at commit 48d368fa (sdxl_train_network.py and the library
modules it uses). Written in our own words; nothing is copied from sd-scripts' help texts or the guide.
Plain data only, so that `loratrain --help` and `explain` stay cheap to import.
"""

FLAG_DOCS: dict[str, str] = {
    # --- console logging (library/utils.py) ---
    "console_log_level": (
        "Verbosity of sd-scripts' own console log: DEBUG, INFO, WARNING, ERROR or CRITICAL; unset means INFO. "
        "It affects the Python logger only, not TensorBoard or wandb."
    ),
    "console_log_file": (
        "Path of a text file that receives sd-scripts' log lines instead of the terminal; the file is "
        "overwritten at each start, not appended to. Progress bars still appear in the terminal."
    ),
    "console_log_simple": (
        "Logs through a plain stdout handler instead of the coloured rich one, which reads better when the "
        "output is piped to a file or a CI log. Irrelevant when console_log_file is set."
    ),
    # --- base model ---
    "v2": (
        "Declares a Stable Diffusion 2.x base model. Must stay off for SDXL: sdxl_train_network.py stops "
        "with an assertion when it is set."
    ),
    "v_parameterization": (
        "Trains with the v-prediction target instead of noise prediction. Only correct when the base "
        "checkpoint is itself a v-prediction model (a few SDXL finetunes are, the SDXL base is not); it also "
        "switches the sample-image scheduler to v-prediction."
    ),
    # --- ModelSpec metadata (library/sai_model_spec.py) ---
    "metadata_title": (
        "Title stored as modelspec.title in the saved file; output_name is used when it is unset. ModelSpec "
        "fields are only kept in .safetensors outputs."
    ),
    "metadata_author": "Author name stored as modelspec.author in the saved .safetensors file.",
    "metadata_description": (
        "Free-form description stored as modelspec.description in the saved .safetensors file, for UIs that "
        "display ModelSpec data."
    ),
    "metadata_license": "License name or identifier stored as modelspec.license in the saved .safetensors file.",
    "metadata_tags": 'Tags for modelspec.tags, given as one comma-separated string such as "style,anime".',
    "metadata_usage_hint": (
        "A short tip for users of the adapter (suggested weight, trigger usage), stored as modelspec.usage_hint."
    ),
    "metadata_thumbnail": (
        "Preview image for the metadata, either a data: URL or an image file path that sd-scripts turns into a "
        "data URL embedded in the file header; keep the image small."
    ),
    "metadata_merged_from": (
        "Source model names for merged files, stored as modelspec.merged_from; seldom meaningful for a freshly "
        "trained LoRA."
    ),
    "metadata_trigger_phrase": (
        "Words a prompt needs to activate the adapter (usually your trigger tag or class token), stored as "
        "modelspec.trigger_phrase."
    ),
    "metadata_preprocessor": (
        "Name of an input preprocessor, stored as modelspec.preprocessor; a ControlNet notion that a plain LoRA "
        "leaves unset."
    ),
    "metadata_is_negative_embedding": (
        "Text value stored as modelspec.is_negative_embedding; meant for textual-inversion embeddings and "
        "pointless for a LoRA."
    ),
    # --- dataset ---
    "cache_info": (
        "Stores each image folder's captions and image sizes in metadata_cache.json inside that folder and reads "
        "them back on later runs, for faster start-up. DreamBooth-style (image folder) subsets only; edited "
        "captions or new images go unnoticed until the cache file is deleted."
    ),
    "caption_extention": (
        "Misspelled older name of caption_extension, still accepted; when given it overrides caption_extension. "
        "Prefer the correctly spelled flag."
    ),
    "keep_tokens_separator": (
        "Marker such as '|||' that splits a caption into a fixed head and a shuffled body, instead of counting "
        "pieces with keep_tokens; a second marker adds a fixed tail. Empty (default) means keep_tokens decides."
    ),
    "secondary_separator": (
        "Extra separator (e.g. ';;;') for text that must shuffle and drop as one piece: captions are not split on "
        "it, and it is turned into caption_separator after shuffling and dropout."
    ),
    "enable_wildcard": (
        "Enables {a|b|c} alternatives in captions, one picked at random each time ({{ and }} give literal "
        "braces), and lets a multi-line caption file supply a random line. Without it only the first line counts."
    ),
    "caption_prefix": (
        "Text put before every caption, joined with a space, e.g. a trigger word. It is added before shuffling, "
        "so write 'mytoken,' if it should be a separate piece."
    ),
    "caption_suffix": (
        "Text put after every caption, joined with a space, before shuffling; begin it with your separator "
        "(', extra') so it forms its own piece."
    ),
    "face_crop_aug_range": (
        "Face-centred random crop, given as 'min,max' floats (e.g. 2.0,4.0): the crop spans that many face "
        "sizes. The face box comes from the file name, which must end in _cx_cy_w_h; images without it are not "
        "face-cropped."
    ),
    "debug_dataset": (
        "Trains nothing: shows the processed images and captions one by one in an OpenCV window (S next step, "
        "E next epoch, Esc quits) so buckets and captions can be checked. Needs a display."
    ),
    "vae_batch_size": (
        "How many images the VAE encodes together when building the latent cache (or encoding on the fly); "
        "default 1. Larger is faster but needs more VRAM."
    ),
    "skip_cache_check": (
        "Trusts existing latent and text-encoder cache files without opening them to confirm they match the "
        "current settings; missing files are still created. Faster start-up, but stale caches slip through after "
        "changing resolution or buckets."
    ),
    "resize_interpolation": (
        "Resampling filter for image resizing: lanczos, nearest, bilinear, linear, bicubic, cubic or area. "
        "Unset picks area for shrinking and lanczos for enlarging."
    ),
    "alpha_mask": (
        "Uses each image's transparency as a loss mask, so fully transparent areas are not learned; images "
        "without an alpha channel count as fully opaque. It enables masked loss on its own, masked_loss is not "
        "needed."
    ),
    "dataset_class": (
        "Dotted path (package.module.Class) of a custom dataset class that replaces sd-scripts' folder, metadata "
        "and dataset_config loading entirely; no validation split is possible then. A developer option."
    ),
    "in_json": (
        "Metadata JSON of a fine-tuning style dataset (captions or tags per image, made with sd-scripts' "
        "finetune tools); images are looked up in train_data_dir and dataset_repeats sets their repeats. Not "
        "needed for folder training."
    ),
    # --- outputs, saving, Hugging Face ---
    "huggingface_repo_id": (
        "Hugging Face repo (owner/name) that receives every saved model file; it is created when missing. Needs "
        "a token (huggingface_token, HF_TOKEN or a cached login) and network access during training."
    ),
    "huggingface_repo_type": "Kind of Hub repository used for uploads, as the Hub API names it: model, dataset or space.",
    "huggingface_path_in_repo": (
        "Folder inside the Hugging Face repo where uploaded files are placed; set it whenever huggingface_repo_id "
        "is used."
    ),
    "huggingface_token": (
        "Hugging Face access token for uploads and for resume_from_huggingface. On the command line it is "
        "exposed (wandb records the command); prefer the HF_TOKEN environment variable."
    ),
    "huggingface_repo_visibility": (
        "Visibility of a repo created for uploads: only the value public makes it public, anything else or unset "
        "makes it private. Existing repos are left as they are."
    ),
    "save_state_to_huggingface": "Also uploads each saved training-state folder (see save_state) to huggingface_repo_id.",
    "resume_from_huggingface": (
        "Reads resume as a state stored on the Hub, written owner/repo/path[:revision[:repo_type]], and downloads "
        "it before continuing."
    ),
    "async_upload": (
        "Uploads to Hugging Face in a background thread so training does not wait; the final model upload is "
        "still done synchronously."
    ),
    "save_n_epoch_ratio": (
        "Targets about N intermediate saves over the whole run by setting the epoch interval to "
        "floor(epochs / N), at least 1. Overrides save_every_n_epochs."
    ),
    "save_last_n_epochs_state": (
        "Retention like save_last_n_epochs but for saved training states, so states can be kept for fewer (or "
        "more) epochs than model files."
    ),
    "save_last_n_steps_state": (
        "Age limit in steps like save_last_n_steps, applied to saved training states and taking precedence over "
        "save_last_n_steps for them."
    ),
    "save_state_on_train_end": (
        "Writes a single <name>-state folder when training ends, even without save_state, so the run can later "
        "be extended with resume."
    ),
    "resume": (
        "Folder of a saved training state to continue from; optimizer, scheduler and step count are restored. "
        "The network options must match the run that wrote the state."
    ),
    # --- training loop ---
    "torch_compile": (
        "Compiles the model with torch.compile through accelerate, using dynamo_backend; early steps are slow "
        "while compiling and platform support varies."
    ),
    "dynamo_backend": (
        "Compiler backend for torch_compile (default inductor); has no effect without torch_compile. It, not "
        "accelerate launch's own dynamo setting, is what counts."
    ),
    "ddp_timeout": (
        "Timeout in minutes for the multi-GPU process group (unset keeps the default); raise it when slow "
        "caching on one process makes the others give up. Only used with more than one GPU."
    ),
    "ddp_gradient_as_bucket_view": (
        "Multi-GPU (DDP) setting that lets gradients share memory with the communication buckets, saving some VRAM."
    ),
    "ddp_static_graph": (
        "Multi-GPU (DDP) setting that promises the model graph never changes between steps, permitting some "
        "optimisations."
    ),
    "clip_skip": (
        "Takes text-encoder output from an earlier layer in SD1.x training. sdxl_train_network.py does not use "
        "it: it only logs a warning."
    ),
    # --- experiment logging ---
    "log_tracker_config": (
        "TOML file with extra tracker start-up settings (e.g. a [wandb] table with entity or tags) for "
        "accelerate's init_trackers; it replaces rather than merges with wandb_run_name."
    ),
    "log_config": (
        "Sends the training arguments to the tracker as the run's config, leaving out secrets and local paths "
        "(model, data, output and log folders)."
    ),
    # --- noise and timesteps ---
    "noise_offset_random_strength": (
        "Draws the noise offset anew each step, uniformly between 0 and noise_offset, instead of always using "
        "the full amount."
    ),
    "ip_noise_gamma": (
        "Input-perturbation noise: slightly extra noise is added to the noised latents while the target stays "
        "the original noise, acting as a regulariser; about 0.1 is the usual strength."
    ),
    "ip_noise_gamma_random_strength": (
        "Draws the input-perturbation strength anew each step, uniformly between 0 and ip_noise_gamma."
    ),
    "zero_terminal_snr": (
        "Rescales the noise schedule so the final timestep is pure noise (zero terminal SNR). Meant for "
        "v-prediction; sd-scripts warns when v_parameterization is off."
    ),
    "min_timestep": (
        "Smallest diffusion timestep drawn during training (0 to 999, default 0); raising it skips the "
        "low-noise, fine-detail end."
    ),
    "max_timestep": (
        "Upper limit, exclusive, of the drawn timesteps (1 to 1000, default 1000); lowering it skips the "
        "high-noise, composition end."
    ),
    "loss_type": (
        "Loss between prediction and target: l2 (mean squared error, default), l1, huber or smooth_l1. The Huber "
        "pair is less sensitive to outliers and is tuned by huber_schedule and huber_c."
    ),
    "huber_schedule": (
        "Shape of the Huber threshold across timesteps, used only by the huber and smooth_l1 loss types: snr "
        "(default), exponential or constant."
    ),
    "huber_c": (
        "Huber threshold for loss_type huber or smooth_l1 (default 0.1); smaller acts more like L1. Under the snr "
        "schedule it is the value approached at high noise."
    ),
    "huber_scale": (
        "Multiplier on the Huber threshold for the constant and exponential schedules (default 1.0); the snr "
        "schedule ignores it."
    ),
    # --- memory placement ---
    "highvram": (
        "Skips the GPU cache clearing sd-scripts does while caching latents, which is quicker when VRAM is plentiful."
    ),
    # --- config files ---
    "prior_loss_weight": (
        "Loss multiplier for regularisation images from reg_data_dir (default 1.0); lower values weaken their pull."
    ),
    # --- masked loss ---
    "conditioning_data_dir": (
        "Conditioning image folder for ControlNet-style scripts; sdxl_train_network.py never reads this flag. For "
        "mask images, put conditioning_data_dir on subsets in a dataset_config and turn on masked_loss."
    ),
    "masked_loss": (
        "Weights the loss with mask images so white areas train and black areas do not; masks come from per-subset "
        "conditioning_data_dir folders in a dataset_config (red channel). For transparency masks use alpha_mask."
    ),
    # --- DeepSpeed ---
    "deepspeed": (
        "Runs training through DeepSpeed via accelerate (needs the deepspeed package) and forces "
        "max_data_loader_n_workers to 1. Mainly for sharding memory over several GPUs; rarely worth it for a LoRA."
    ),
    "zero_stage": (
        "DeepSpeed ZeRO stage 0 to 3 (default 2): higher stages split more of optimizer state, gradients and "
        "weights across GPUs. Only with deepspeed."
    ),
    "offload_optimizer_device": "With deepspeed (ZeRO stage 2 or 3), moves optimizer state to cpu or nvme to free VRAM.",
    "offload_optimizer_nvme_path": "Directory on an NVMe drive used when offload_optimizer_device is nvme.",
    "offload_param_device": "With deepspeed ZeRO stage 3, moves model weights to cpu or nvme.",
    "offload_param_nvme_path": "Directory on an NVMe drive used when offload_param_device is nvme.",
    "zero3_init_flag": (
        "With ZeRO stage 3, creates models already partitioned (deepspeed.zero.Init) to lower peak memory while "
        "loading."
    ),
    "zero3_save_16bit_model": "With ZeRO stage 3, gathers the weights and saves them in 16-bit.",
    "fp16_master_weights_and_gradients": (
        "DeepSpeed option to keep master weights and gradients in fp16; sd-scripts only applies it with ZeRO "
        "stage 2 plus CPU optimizer offload and otherwise just logs that it is unsupported."
    ),
    # --- optimizer and schedule ---
    "use_8bit_adam": (
        "Old switch for AdamW8bit from bitsandbytes; clashes with optimizer_type and use_lion_optimizer. Write "
        "optimizer_type=AdamW8bit instead."
    ),
    "use_lion_optimizer": (
        "Old switch for the Lion optimizer (lion-pytorch); clashes with optimizer_type and use_8bit_adam. Write "
        "optimizer_type=Lion instead."
    ),
    "lr_scheduler_type": (
        "Custom scheduler: a torch.optim.lr_scheduler class name or a full module.Class path, configured with "
        "lr_scheduler_args. It replaces lr_scheduler and fails if warmup steps are set."
    ),
    "lr_decay_steps": (
        "Length of the closing decay phase of warmup_stable_decay, as whole steps or a share below 1 of all "
        "steps; default 0."
    ),
    "fused_backward_pass": (
        "Merges the optimizer step into the backward pass to save VRAM. sd-scripts demands Adafactor and "
        "gradient_accumulation_steps 1 for it, but the LoRA trainer does not implement it, so it gains nothing "
        "in sdxl_train_network.py."
    ),
    "lr_scheduler_timescale": ("Timescale of the inverse_sqrt scheduler; unset uses the warmup step count."),
    "lr_scheduler_min_lr_ratio": (
        "Floor of the learning rate as a share of the initial one, for cosine_with_min_lr and warmup_stable_decay."
    ),
    # --- loss weighting ---
    "min_snr_gamma": (
        "Min-SNR loss weighting: scales each timestep's loss by min(SNR, gamma)/SNR so the easy low-noise steps "
        "do not dominate; the paper suggests 5, and lower values act more strongly."
    ),
    "scale_v_pred_loss_like_noise_pred": (
        "Rescales the v-prediction loss per timestep so it is weighted like a noise-prediction loss. Only valid "
        "with v_parameterization; the run stops otherwise."
    ),
    "v_pred_like_loss": (
        "Adds a v-prediction-style loss term, multiplied by this value, to a noise-prediction model's loss. Not "
        "allowed together with v_parameterization."
    ),
    "debiased_estimation_loss": (
        "Weights each timestep's loss by 1/sqrt(SNR) (debiased estimation), reducing the weight of low-noise "
        "steps; an alternative to min_snr_gamma."
    ),
    "weighted_captions": (
        "Enables (word:1.3)-style emphasis inside captions. Keep commas out of the parentheses, or shuffling and "
        "tag dropout can split a weighted span and break it."
    ),
    # --- train_network.py's own options ---
    "cpu_offload_checkpointing": (
        "Experimental offloading of checkpointed tensors to CPU. The SDXL U-Net's checkpointing takes no such "
        "option, so with gradient_checkpointing sdxl_train_network.py fails with a TypeError; leave it off."
    ),
    "no_metadata": (
        "Leaves the detailed training metadata (ss_* keys: settings, dataset, tag counts) out of saved files, "
        "keeping a minimal set plus the ModelSpec fields; useful to avoid leaking paths and captions."
    ),
    "fp8_base_unet": (
        "Holds only the frozen base U-Net in fp8, while the text encoders stay in fp16 or bf16; needs "
        "mixed_precision fp16 or bf16."
    ),
    "training_comment": "Free text saved in the file's metadata as ss_training_comment, e.g. trigger words or notes.",
    "base_weights": (
        "One or more adapter files merged into the base model before training, so the new LoRA learns on top of "
        "them; they are not part of the output."
    ),
    "base_weights_multiplier": "Merge strength for each base_weights file in the same order; missing values count as 1.0.",
    "skip_until_initial_step": (
        "With initial_step or initial_epoch, really skips (loads and discards) batches up to that point so the "
        "data order matches a continued run; without it only the epoch number is shifted."
    ),
    "initial_epoch": (
        "Starts epoch numbering at this epoch (1 is a normal start) when continuing a run; the learning-rate "
        "schedule restarts unless resume is used. initial_step overrides it."
    ),
    "initial_step": (
        "Starts at this global step (0 is a normal start), counted over all epochs; must be below "
        "max_train_steps and overrides initial_epoch. Pair with skip_until_initial_step to actually skip data."
    ),
    "validation_seed": (
        "Seed that picks which images form the validation split and drives the validation noise; falls back to seed."
    ),
    "validation_split": (
        "Share (0 to 1) of the training images held back to measure a validation loss; default 0.0 means no "
        "validation. Held-back images are not trained on."
    ),
    "validate_every_n_steps": "Additionally runs validation every N optimizer steps, besides the end-of-epoch validation.",
    "validate_every_n_epochs": "Runs the end-of-epoch validation only every N epochs instead of after each epoch.",
    "max_validation_steps": "Caps the number of validation batches per validation pass; unset uses the whole split.",
}
