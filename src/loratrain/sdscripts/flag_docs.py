"""Descriptions behind `loratrain explain`, written in our own words.

Facts were checked against kohya-ss/sd-scripts at commit 48d368fa (sdxl_train_network.py and the
library modules it uses), lycoris_lora 4.1.3 and accelerate's launcher, plus the measured notes in
shared/reference. Nothing here is copied from those projects' help texts or from the user's guide.

Plain data only, so that `loratrain --help` and `explain` stay cheap to import:

- FLAG_DOCS: every argparse dest of sdxl_train_network.py (except `help`) -> what it does.
- GUIDE_ADVICE: the flags the training guide gives advice on -> that advice, restated (and corrected
  where sd-scripts behaves differently from what the guide says).
- LYCORIS_ARG_DOCS / LORA_ARG_DOCS: `network_args` keys read by lycoris.kohya 4.1.3 and by
  sd-scripts' networks.lora, plus the guide's keys that a module ignores.
- NETWORK_ARGS_GUIDE_ADVICE: the guide's advice on a few network_args keys.
- ACCELERATE_DOCS / ACCELERATE_GUIDE_ADVICE: the `accelerate launch` options loratrain renders.
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
    "pretrained_model_name_or_path": (
        "The SDXL base to train on: a single checkpoint file (.safetensors read with safetensors, any other "
        "extension via torch.load), a local diffusers folder, or a Hugging Face repo id that gets downloaded. "
        "A wrong path only fails after the dataset has been scanned."
    ),
    "tokenizer_cache_dir": (
        "Folder where the two SDXL CLIP tokenizers are stored after their first download and read from later, "
        "which is what allows offline training. sd-scripts never takes tokenizers from the checkpoint, so "
        "without this (or a filled Hub cache) each run contacts huggingface.co."
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
    "metadata_tags": "Tags for modelspec.tags, given as one comma-separated string such as \"style,anime\".",
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
    "train_data_dir": (
        "Parent of the image folders in folder (DreamBooth) mode: every direct subfolder named N_name becomes a "
        "subset repeated N times, with name as fallback caption; folders without the number are skipped. With "
        "in_json it is the image folder instead; ignored when dataset_config is given."
    ),
    "cache_info": (
        "Stores each image folder's captions and image sizes in metadata_cache.json inside that folder and reads "
        "them back on later runs, for faster start-up. DreamBooth-style (image folder) subsets only; edited "
        "captions or new images go unnoticed until the cache file is deleted."
    ),
    "shuffle_caption": (
        "Reorders the caption's pieces (split on caption_separator) every time an image is used, leaving the "
        "first keep_tokens pieces in place. Cannot be combined with cache_text_encoder_outputs (assertion at start)."
    ),
    "caption_separator": (
        "String that cuts captions into pieces for shuffling, keep_tokens and tag dropout; default ','. The "
        "pieces are glued back together with ', '."
    ),
    "caption_extension": (
        "Extension, dot included, of the caption file next to each image; the default is .caption, so .txt "
        "captions need \".txt\". An image without a caption file gets its folder's class token, or an empty "
        "caption with a warning."
    ),
    "caption_extention": (
        "Misspelled older name of caption_extension, still accepted; when given it overrides caption_extension. "
        "Prefer the correctly spelled flag."
    ),
    "keep_tokens": (
        "How many leading caption pieces stay fixed, safe from shuffling and tag dropout; default 0. Put the "
        "trigger word first and use 1. Only matters while shuffle_caption, tag dropout or token warmup is active."
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
    "color_aug": (
        "Applies a small random hue shift to training images. Not allowed with latent caching (cache_latents or "
        "cache_latents_to_disk stop with an assertion), since cached latents cannot change per step."
    ),
    "flip_aug": (
        "Mirrors images left-right at random, adding variety but teaching that both sides are interchangeable "
        "(bad for asymmetric designs or text). Works with latent caching, which then also stores flipped latents."
    ),
    "face_crop_aug_range": (
        "Face-centred random crop, given as 'min,max' floats (e.g. 2.0,4.0): the crop spans that many face "
        "sizes. The face box comes from the file name, which must end in _cx_cy_w_h; images without it are not "
        "face-cropped."
    ),
    "random_crop": (
        "Takes a random window instead of the centre when a scaled image is larger than its bucket. Not allowed "
        "with latent caching (assertion at start)."
    ),
    "debug_dataset": (
        "Trains nothing: shows the processed images and captions one by one in an OpenCV window (S next step, "
        "E next epoch, Esc quits) so buckets and captions can be checked. Needs a display."
    ),
    "resolution": (
        "Training size as 'W,H' or one number for a square, e.g. \"1024,1024\"; its area is the pixel budget of "
        "every bucket. Required in folder mode; a malformed value only fails once the run starts."
    ),
    "cache_latents": (
        "Encodes every image with the VAE once before training and keeps the latents in RAM, saving VAE time "
        "and VRAM per step. Excludes color_aug and random_crop; flip_aug still works."
    ),
    "vae_batch_size": (
        "How many images the VAE encodes together when building the latent cache (or encoding on the fly); "
        "default 1. Larger is faster but needs more VRAM."
    ),
    "cache_latents_to_disk": (
        "Caches latents like cache_latents (and turns it on) but also saves them as .npz files beside the "
        "images, so later runs skip encoding. The image folders must be writable."
    ),
    "skip_cache_check": (
        "Trusts existing latent and text-encoder cache files without opening them to confirm they match the "
        "current settings; missing files are still created. Faster start-up, but stale caches slip through after "
        "changing resolution or buckets."
    ),
    "enable_bucket": (
        "Aspect-ratio bucketing: images are grouped into buckets of different shapes with roughly the pixel "
        "area of resolution, and each batch comes from one bucket, so non-square images are not forced into a "
        "square crop."
    ),
    "min_bucket_reso": (
        "Shortest side in pixels any bucket may have; default 256. Rounded down to a multiple of "
        "bucket_reso_steps and must not exceed the smaller side of resolution (checked even with bucket_no_upscale, "
        "which otherwise stops it from limiting bucket sizes)."
    ),
    "max_bucket_reso": (
        "Longest side in pixels any bucket may have; default 1024, which keeps every bucket inside 1024x1024 so "
        "wide or tall SDXL shapes lose area (use e.g. 2048). Rounded up to bucket_reso_steps; must be at least the "
        "longer side of resolution even with bucket_no_upscale, which otherwise stops it from limiting bucket sizes."
    ),
    "bucket_reso_steps": (
        "Spacing in pixels between bucket sizes; default 64. For SDXL it must be a multiple of 32 (checked at "
        "start); 32 gives finer aspect ratios."
    ),
    "bucket_no_upscale": (
        "Builds buckets per image without ever enlarging: images above the resolution area shrink to it keeping "
        "their aspect, smaller ones keep their size (trimmed to bucket_reso_steps multiples). min/max_bucket_reso "
        "are then ignored."
    ),
    "resize_interpolation": (
        "Resampling filter for image resizing: lanczos, nearest, bilinear, linear, bicubic, cubic or area. "
        "Unset picks area for shrinking and lanczos for enlarging."
    ),
    "token_warmup_min": (
        "Number of caption pieces (beyond the kept ones) used at the very start of token warmup; default 1. "
        "Without token_warmup_step it does nothing."
    ),
    "token_warmup_step": (
        "Step by which captions reach full length, growing linearly from token_warmup_min pieces; below 1 it is a "
        "fraction of max_train_steps, 0 (default) turns warmup off. Not allowed with cache_text_encoder_outputs."
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
    "caption_dropout_rate": (
        "Chance (0 to 1) that an image is trained with an empty caption on a given step, helping the LoRA work "
        "without its prompt. Not allowed with cache_text_encoder_outputs."
    ),
    "caption_dropout_every_n_epochs": (
        "Empties all captions during every epoch whose number is a multiple of N; 0 (default) disables it. "
        "Unlike the other caption dropouts it is not checked against cache_text_encoder_outputs."
    ),
    "caption_tag_dropout_rate": (
        "Chance (0 to 1) that each caption piece is omitted on a given step; pieces protected by keep_tokens are "
        "never dropped. Not allowed with cache_text_encoder_outputs."
    ),
    "reg_data_dir": (
        "Parent of regularisation (prior) image folders, named N_class like the training folders. These images "
        "are repeated to match the training item count, so steps per epoch roughly double; their loss is scaled "
        "by prior_loss_weight."
    ),
    "in_json": (
        "Metadata JSON of a fine-tuning style dataset (captions or tags per image, made with sd-scripts' "
        "finetune tools); images are looked up in train_data_dir and dataset_repeats sets their repeats. Not "
        "needed for folder training."
    ),
    "dataset_repeats": (
        "Repeat count used only as the final fallback: for in_json datasets and for dataset_config subsets that "
        "set num_repeats nowhere. In folder mode the N_ prefixes decide and it does nothing; 0 makes those other "
        "subsets be skipped."
    ),
    # --- outputs, saving, Hugging Face ---
    "output_dir": (
        "Folder for saved adapter files, training states and the sample/ images; created when missing. Nothing "
        "checks it up front, but without it the run fails at its first save."
    ),
    "output_name": (
        "Base file name of saved adapters, without extension: final file <name>.safetensors, epoch saves "
        "<name>-000005, step saves <name>-step00000500. Unset, the final file is called last and intermediate "
        "ones use the prefixes epoch and at."
    ),
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
    "save_precision": (
        "Number format of the saved weights: float (32-bit), fp16 or bf16; unset keeps the dtype they were "
        "trained in, normally float32. The 32-bit choice is spelled float, not fp32."
    ),
    "save_every_n_epochs": (
        "Writes an intermediate adapter every N epochs (not after the last epoch, which the final save covers). "
        "save_n_epoch_ratio overrides it."
    ),
    "save_every_n_steps": "Writes an intermediate adapter every N optimizer steps, independently of epoch-based saving.",
    "save_n_epoch_ratio": (
        "Targets about N intermediate saves over the whole run by setting the epoch interval to "
        "floor(epochs / N), at least 1. Overrides save_every_n_epochs."
    ),
    "save_last_n_epochs": (
        "Keeps only the newest N epoch-interval saves, deleting older ones as training proceeds; the final file "
        "is never deleted. Used with save_every_n_epochs."
    ),
    "save_last_n_epochs_state": (
        "Retention like save_last_n_epochs but for saved training states, so states can be kept for fewer (or "
        "more) epochs than model files."
    ),
    "save_last_n_steps": (
        "Deletes step-interval saves once they are more than N steps old: it counts steps, not files "
        "(save_every_n_steps 100 with 300 keeps about three)."
    ),
    "save_last_n_steps_state": (
        "Age limit in steps like save_last_n_steps, applied to saved training states and taking precedence over "
        "save_last_n_steps for them."
    ),
    "save_state": (
        "Each time a model file is saved, also writes an accelerate state folder (<name>-000005-state or "
        "<name>-step00000500-state) holding optimizer, scheduler and random state for resume. States are far "
        "larger than the LoRA."
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
    "train_batch_size": (
        "Images per batch on each GPU; default 1. With bucketing every batch comes from one bucket, so sparse "
        "buckets give partial batches; the effective batch is this x gradient_accumulation_steps x GPU count."
    ),
    "max_token_length": (
        "Caption length limit in tokens: unset means 75 (one CLIP window); 150 or 225 encode longer captions in "
        "75-token chunks. Tokens beyond the limit are cut off."
    ),
    "mem_eff_attn": (
        "Uses sd-scripts' own memory-saving attention in the U-Net, slower than sdpa or xformers. When several "
        "attention flags are given, this one wins over xformers, which wins over sdpa."
    ),
    "torch_compile": (
        "Compiles the model with torch.compile through accelerate, using dynamo_backend; early steps are slow "
        "while compiling and platform support varies."
    ),
    "dynamo_backend": (
        "Compiler backend for torch_compile (default inductor); has no effect without torch_compile. It, not "
        "accelerate launch's own dynamo setting, is what counts."
    ),
    "xformers": (
        "Uses the xformers package's memory-efficient attention in the U-Net and VAE; needs an xformers build "
        "matching your torch and CUDA."
    ),
    "sdpa": (
        "Uses PyTorch's built-in scaled dot-product attention in the U-Net: fast and memory-saving on recent "
        "GPUs, no extra package. Loses to mem_eff_attn or xformers when those are set as well."
    ),
    "vae": (
        "A separate VAE replacing the one inside the base model, as a file (.safetensors, .ckpt, .bin) or a "
        "diffusers folder/repo. It changes latent encoding (and caches) and sample images."
    ),
    "max_train_steps": (
        "Total optimizer steps to train; default 1600. Ignored when max_train_epochs is set, which is turned into "
        "a step count instead."
    ),
    "max_train_epochs": (
        "Number of epochs to train; converted to steps from dataset size, batch size, GPU count and gradient "
        "accumulation, and takes precedence over max_train_steps."
    ),
    "max_data_loader_n_workers": (
        "Upper limit on data-loading worker processes (also capped at the CPU count); default 8, 0 loads in the "
        "main process. More workers load faster but use more RAM; cached latents need few."
    ),
    "persistent_data_loader_workers": (
        "Keeps data-loading workers alive across epochs instead of restarting them, removing the pause at each "
        "epoch start at some memory cost; helps most with many short epochs."
    ),
    "seed": (
        "Random seed for shuffling, augmentation, noise and timesteps. Unset draws a new random seed each run, "
        "so set it for reproducible results."
    ),
    "gradient_checkpointing": (
        "Recomputes activations during the backward pass instead of keeping them: a large VRAM saving for SDXL "
        "at the cost of slower steps; usually needed on cards with 24 GB or less."
    ),
    "gradient_accumulation_steps": (
        "Batches whose gradients are added up before each optimizer step: a bigger effective batch without more "
        "VRAM. Step-based settings (max_train_steps, warmup, save/sample intervals) count optimizer steps."
    ),
    "mixed_precision": (
        "Compute precision: no (float32), fp16 or bf16. sd-scripts hands it to accelerate directly, so it beats "
        "the accelerate config. bf16 needs an Ampere or newer GPU; fp16 with the SDXL VAE wants no_half_vae."
    ),
    "full_fp16": (
        "Keeps the trained network's weights and gradients in fp16 as well, not just the computation; saves "
        "memory but is numerically fragile. Requires mixed_precision fp16."
    ),
    "full_bf16": (
        "Keeps the trained network's weights and gradients in bf16; saves memory with fewer overflow issues than "
        "full_fp16. Requires mixed_precision bf16."
    ),
    "fp8_base": (
        "Holds the frozen base U-Net and text encoders in fp8 to save VRAM while the adapter trains at mixed "
        "precision. Needs mixed_precision fp16 or bf16 and torch 2.1 or newer; may cost some quality."
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
    "logging_dir": (
        "Folder for training logs; each run writes to a new <log_prefix><timestamp> subfolder. Setting it alone "
        "enables TensorBoard logging; without it no loss curves are recorded."
    ),
    "log_with": (
        "Tracker(s) that receive the logs: tensorboard, wandb or all. tensorboard and all require logging_dir; "
        "wandb needs the wandb package and a login."
    ),
    "log_prefix": (
        "Text placed before the timestamp in each run's log folder name (<logging_dir>/<prefix><YYYYmmddHHMMSS>). "
        "Does nothing without logging_dir."
    ),
    "log_tracker_name": (
        "Project or run name handed to the tracker (for wandb the project); default network_train."
    ),
    "wandb_run_name": (
        "Display name of the run on wandb. Lost when log_tracker_config is also given, because that file "
        "replaces the tracker start-up settings."
    ),
    "log_tracker_config": (
        "TOML file with extra tracker start-up settings (e.g. a [wandb] table with entity or tags) for "
        "accelerate's init_trackers; it replaces rather than merges with wandb_run_name."
    ),
    "wandb_api_key": (
        "wandb API key used to log in before training. On the command line it is visible, and wandb records the "
        "command; prefer WANDB_API_KEY in the environment."
    ),
    "log_config": (
        "Sends the training arguments to the tracker as the run's config, leaving out secrets and local paths "
        "(model, data, output and log folders)."
    ),
    # --- noise and timesteps ---
    "noise_offset": (
        "Adds a random constant per latent channel to the training noise (offset noise), letting the LoRA learn "
        "very dark or very bright images; values around 0.03 to 0.1 are usual. adaptive_noise_scale builds on it."
    ),
    "noise_offset_random_strength": (
        "Draws the noise offset anew each step, uniformly between 0 and noise_offset, instead of always using "
        "the full amount."
    ),
    "multires_noise_iterations": (
        "Multi-resolution (pyramid) noise: mixes in noise at this many ever coarser scales, which helps with "
        "overall brightness and low-frequency structure. Unset disables it; multires_noise_discount sets the falloff."
    ),
    "ip_noise_gamma": (
        "Input-perturbation noise: slightly extra noise is added to the noised latents while the target stays "
        "the original noise, acting as a regulariser; about 0.1 is the usual strength."
    ),
    "ip_noise_gamma_random_strength": (
        "Draws the input-perturbation strength anew each step, uniformly between 0 and ip_noise_gamma."
    ),
    "multires_noise_discount": (
        "Weight decay across pyramid levels for multi-resolution noise: level i is scaled by discount^i; default "
        "0.3. Has no effect unless multires_noise_iterations is set."
    ),
    "adaptive_noise_scale": (
        "Adds this factor times each latent channel's mean magnitude to noise_offset, so strongly lit or dark "
        "images get more offset. Requires noise_offset, otherwise the run stops."
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
    "lowram": (
        "Loads the base model directly onto the GPU instead of staging it in system RAM, for machines or "
        "multi-GPU runs short on RAM but with enough VRAM."
    ),
    "highvram": (
        "Skips the GPU cache clearing sd-scripts does while caching latents, which is quicker when VRAM is "
        "plentiful."
    ),
    # --- sample images ---
    "sample_every_n_steps": (
        "Makes sample images from sample_prompts every N optimizer steps. Ignored when sample_every_n_epochs is "
        "set; 0 or less turns it off."
    ),
    "sample_at_first": "Also makes sample images before the first step, as a baseline for later samples.",
    "sample_every_n_epochs": (
        "Produces sample images after every N-th epoch; once set, sample_every_n_steps is ignored. Needs "
        "sample_prompts."
    ),
    "sample_prompts": (
        "Prompt file for sample images (.txt, .toml or .json). In .txt, one prompt per line with optional --n "
        "negative, --w/--h size, --d seed, --l CFG scale, --s steps, --ss sampler; lines starting with # are "
        "skipped. No file, no samples."
    ),
    "sample_sampler": (
        "Scheduler used for sample images unless a prompt picks another with --ss; default ddim. Each k_ name is "
        "an alias of the plain one (k_euler_a is euler_a)."
    ),
    # --- config files ---
    "config_file": (
        "TOML file of arguments keyed by their dest names (tables are flattened); command-line flags override "
        "it. Its values bypass argparse's type and choice checks; .toml is appended when missing."
    ),
    "output_config": (
        "Together with config_file, writes the non-default arguments into that file and exits without training; "
        "refuses to overwrite an existing file."
    ),
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
    "optimizer_type": (
        "Optimizer, matched case-insensitively: empty means AdamW; also AdamW8bit, Lion, Prodigy, the DAdapt "
        "family, Adafactor, schedule-free variants and more, or any torch.optim class or module.Class path. "
        "Several need extra packages (bitsandbytes, prodigyopt)."
    ),
    "use_8bit_adam": (
        "Old switch for AdamW8bit from bitsandbytes; clashes with optimizer_type and use_lion_optimizer. Write "
        "optimizer_type=AdamW8bit instead."
    ),
    "use_lion_optimizer": (
        "Old switch for the Lion optimizer (lion-pytorch); clashes with optimizer_type and use_8bit_adam. Write "
        "optimizer_type=Lion instead."
    ),
    "learning_rate": (
        "Base learning rate and the fallback for unet_lr and text_encoder_lr. Its default 2e-6 suits full "
        "fine-tuning and is far too low for a LoRA (1e-4 is typical with AdamW); Prodigy and DAdapt expect "
        "about 1.0."
    ),
    "max_grad_norm": "Clips the overall gradient norm to this value before each step (default 1.0); 0 disables clipping.",
    "optimizer_args": (
        "Extra optimizer settings as key=value items, e.g. weight_decay=0.01 betas=0.9,0.99; each value is read "
        "as a Python literal, so text needs quotes. Repeating the flag replaces the earlier list."
    ),
    "lr_scheduler_type": (
        "Custom scheduler: a torch.optim.lr_scheduler class name or a full module.Class path, configured with "
        "lr_scheduler_args. It replaces lr_scheduler and fails if warmup steps are set."
    ),
    "lr_scheduler_args": (
        "Extra scheduler keyword arguments as key=value items, values read as Python literals (e.g. T_max=100); "
        "used by lr_scheduler_type and passed to the built-in schedulers too."
    ),
    "lr_scheduler": (
        "Learning-rate curve: constant (default), constant_with_warmup, linear, cosine, cosine_with_restarts, "
        "polynomial, inverse_sqrt, cosine_with_min_lr, warmup_stable_decay, piecewise_constant or adafactor. "
        "constant rejects warmup; schedule-free optimizers ignore it."
    ),
    "lr_warmup_steps": (
        "Linear warmup at the start: a whole number of steps, or a value below 1 (or 'N%') as a share of all "
        "steps; default 0. A float of 1 or more is rejected, write an integer. The constant scheduler refuses "
        "warmup; use constant_with_warmup."
    ),
    "lr_decay_steps": (
        "Length of the closing decay phase of warmup_stable_decay, as whole steps or a share below 1 of all "
        "steps; default 0."
    ),
    "lr_scheduler_num_cycles": (
        "Number of cosine cycles (hard restarts) for cosine_with_restarts, and the cycle count of "
        "cosine_with_min_lr and warmup_stable_decay (which get cycles / 2); default 1. Other schedulers ignore it."
    ),
    "lr_scheduler_power": (
        "Exponent of the polynomial scheduler's decay curve; default 1, a straight line."
    ),
    "fused_backward_pass": (
        "Merges the optimizer step into the backward pass to save VRAM. sd-scripts demands Adafactor and "
        "gradient_accumulation_steps 1 for it, but the LoRA trainer does not implement it, so it gains nothing "
        "in sdxl_train_network.py."
    ),
    "lr_scheduler_timescale": (
        "Timescale of the inverse_sqrt scheduler; unset uses the warmup step count."
    ),
    "lr_scheduler_min_lr_ratio": (
        "Floor of the learning rate as a share of the initial one, for cosine_with_min_lr and "
        "warmup_stable_decay."
    ),
    "dataset_config": (
        "A .toml or .json file describing datasets and subsets in detail (folders, repeats, captions, buckets). "
        "When given, train_data_dir, reg_data_dir and in_json are ignored and folder names no longer set repeats; "
        "unknown keys are errors and number types are strict."
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
    "save_model_as": (
        "File format of the saved adapter: safetensors (default), ckpt or pt. Only safetensors keeps metadata; "
        "ckpt and pt are torch pickles, which can run code when loaded."
    ),
    "unet_lr": "Learning rate for the adapter's U-Net modules; learning_rate is used when it is unset.",
    "text_encoder_lr": (
        "Learning rate for the text-encoder modules. Several numbers are accepted, but networks.lora and "
        "lycoris.kohya use only the first, for both SDXL encoders. Unset falls back to learning_rate; 0 drops "
        "those modules from training."
    ),
    "fp8_base_unet": (
        "Holds only the frozen base U-Net in fp8, while the text encoders stay in fp16 or bf16; needs "
        "mixed_precision fp16 or bf16."
    ),
    "network_weights": (
        "Existing adapter file to start from, to continue or refine it. It is loaded non-strictly into the newly "
        "built network: ranks must match (or use dim_from_weights), modules present on one side only are skipped "
        "quietly, and the file's stored alpha replaces network_alpha."
    ),
    "network_module": (
        "Python module that builds the adapter: networks.lora (sd-scripts' built-in LoRA, with LoCon via "
        "conv_dim) or lycoris.kohya (LoCon, LoHa, LoKr and more; pip package lycoris_lora). It decides which "
        "network_args keys mean anything."
    ),
    "network_dim": (
        "Rank of the adapter: its capacity and file size; unset means 4. Some LyCORIS algorithms read it "
        "differently (a block size for diag-oft and boft, ignored by full and ia3)."
    ),
    "network_alpha": (
        "Scales the learned update by alpha/dim: alpha equal to dim means no scaling, a smaller alpha damps the "
        "update and in effect the learning rate. Default 1, which with a large dim is a very small scale."
    ),
    "network_dropout": (
        "Neuron dropout probability on the adapter's down-projection output each step; unset or 0 means none. "
        "sd-scripts also hands it to LyCORIS as its dropout key unless network_args sets dropout."
    ),
    "network_args": (
        "Extra key=value options passed as strings to network_module (e.g. algo=locon conv_dim=8); see the "
        "network-args docs. Both modules silently ignore keys they do not know; repeating the flag replaces the "
        "list; an item without '=' crashes."
    ),
    "network_train_unet_only": (
        "Attaches adapter modules to the U-Net only and leaves both text encoders untouched: common for SDXL, "
        "saves memory, and required for cache_text_encoder_outputs."
    ),
    "network_train_text_encoder_only": "Trains only the text-encoder modules and leaves the U-Net alone; rarely useful.",
    "training_comment": "Free text saved in the file's metadata as ss_training_comment, e.g. trigger words or notes.",
    "dim_from_weights": (
        "Builds the network with the ranks found in network_weights instead of network_dim and conv_dim, so an "
        "existing file can be continued without restating its shape. Requires network_weights."
    ),
    "scale_weight_norms": (
        "Max-norm regularisation: after every step, modules whose update norm exceeds this value are scaled "
        "back to it (1.0 is a common start) and the number scaled is logged. Networks without support warn and "
        "ignore it."
    ),
    "base_weights": (
        "One or more adapter files merged into the base model before training, so the new LoRA learns on top of "
        "them; they are not part of the output."
    ),
    "base_weights_multiplier": "Merge strength for each base_weights file in the same order; missing values count as 1.0.",
    "no_half_vae": (
        "Keeps the VAE in float32 under fp16 or bf16 mixed precision. The stock SDXL VAE overflows in fp16, "
        "giving NaN latents and black samples, so use it unless your VAE is an fp16-fixed one."
    ),
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
    # --- SDXL-only options ---
    "cache_text_encoder_outputs": (
        "Runs both text encoders over all captions once before training and reuses the results, freeing their "
        "VRAM. Needs network_train_unet_only and fixed captions: shuffle_caption, caption_dropout_rate, "
        "caption_tag_dropout_rate and token_warmup_step are rejected."
    ),
    "cache_text_encoder_outputs_to_disk": (
        "Caches text-encoder outputs (and turns cache_text_encoder_outputs on) as <image>_te_outputs.npz files "
        "beside the images for reuse across runs; same restrictions."
    ),
    "disable_mmap_load_safetensors": (
        "Reads .safetensors model files wholly into memory instead of memory-mapping them; can load much faster "
        "on WSL or network drives, at the cost of RAM."
    ),
}


GUIDE_ADVICE: dict[str, str] = {
    "lowram": "The guide turns it on when two GPUs each load a big model and system RAM runs out.",
    "pretrained_model_name_or_path": (
        "The guide trains from a diffusers copy of the model and ends a local diffusers folder path with '/'; "
        "a .safetensors or .ckpt file works as well."
    ),
    "resolution": (
        "Use the model's native size, 1024,1024 for SDXL-based models like Pony; drop to 512,512 only as a last "
        "resort when VRAM is too small."
    ),
    "enable_bucket": "Recommended so images of other aspect ratios are not awkwardly cropped to squares.",
    "bucket_no_upscale": "The guide uses it to shrink oversized images to the area budget while never enlarging small ones.",
    "min_bucket_reso": "The guide's example uses 256 (with max_bucket_reso 1024).",
    "max_bucket_reso": (
        "The guide's example uses 1024; note that this caps every bucket side at 1024, so non-square buckets "
        "have less area than 1024x1024."
    ),
    "bucket_reso_steps": "The guide's example uses 32, the finest step SDXL accepts.",
    "network_dim": (
        "The guide's example uses 8; it ties closely to alpha, the learning rates and dataset quality, so "
        "experiment."
    ),
    "network_alpha": "The guide's example uses 4 with network_dim 8 (a scale of 0.5).",
    "save_model_as": "Use safetensors.",
    "network_module": "The guide trains LyCORIS through lycoris.kohya (install the lycoris_lora package).",
    "network_dropout": (
        "The guide's example sets 0, which equals no dropout; with LyCORIS DoRA (dora_wd) neuron dropout is "
        "not applied anyway."
    ),
    "lr_scheduler": "The guide's example uses cosine; the adafactor scheduler only pairs with the Adafactor optimizer.",
    "lr_scheduler_num_cycles": (
        "Matters for cosine_with_restarts, cosine_with_min_lr and warmup_stable_decay; other schedulers ignore it."
    ),
    "learning_rate": "About 1e-4 works well with AdamW according to the guide.",
    "unet_lr": "The guide gives the U-Net the same 1e-4 as learning_rate when using AdamW.",
    "text_encoder_lr": (
        "The guide also uses 1e-4 for the text encoders with AdamW; that means both SDXL encoders get trained, "
        "which rules out cache_text_encoder_outputs."
    ),
    "output_name": (
        "The guide insists on always setting a name. In sd-scripts 48d368fa an unset name still saves (as "
        "last.safetensors), but runs sharing an output_dir then overwrite each other."
    ),
    "scale_weight_norms": (
        "The guide suggests 1.0: it bounds the weights, complementing max_grad_norm, which bounds the gradients."
    ),
    "max_grad_norm": "Keep it at 1.0; if the loss turns NaN or explodes, this is the knob to revisit.",
    "no_half_vae": "Recommended to avoid NaNs from the SDXL VAE under half precision.",
    "save_every_n_epochs": "The guide's example saves every 50 epochs; pair with save_last_n_epochs to prune old files.",
    "save_last_n_epochs": "Use it to keep only the latest few epoch saves.",
    "save_every_n_steps": "Alternative to epoch saving; pair with save_last_n_steps to prune old files.",
    "mixed_precision": (
        "fp16 or bf16 trade a little stability for speed and memory (bf16 keeps float32's range); if the loss "
        "turns NaN, fall back to no."
    ),
    "save_precision": (
        "fp16 is a sound default: small files at hardly any quality cost. The guide's 'fp32' is spelled float "
        "in sd-scripts."
    ),
    "caption_extension": "The guide's captions are .txt files, so it sets \".txt\".",
    "cache_latents": (
        "Recommended for speed; encoding happens once instead of every step, and latents stay consistent across "
        "epochs."
    ),
    "cache_latents_to_disk": (
        "Recommended for large datasets that would not fit in RAM; mind the disk space the .npz files take."
    ),
    "optimizer_type": "The guide uses AdamW.",
    "dataset_repeats": (
        "The guide sets 0. In folder mode that changes nothing (the N_ folder prefixes set repeats); with a "
        "dataset_config or in_json it would skip every subset without num_repeats, so better leave it unset."
    ),
    "max_train_steps": "The guide's example trains 400 steps; max_train_epochs wins if both are given.",
    "shuffle_caption": (
        "Recommended for comma-separated tag captions; the guide also ends its prose sentences with commas so "
        "they shuffle too. It rules out cache_text_encoder_outputs, so choose between the two."
    ),
    "sdpa": "The guide's example uses sdpa; benchmark it against xformers and mem_eff_attn on your own GPU.",
    "xformers": "Worth benchmarking against sdpa on your GPU; the guide picks whichever trains faster.",
    "mem_eff_attn": "Worth benchmarking against sdpa and xformers; the guide's example uses sdpa.",
    "multires_noise_iterations": (
        "The guide recommends 6 to 10 (its example uses 10) and would use it in practically every run, "
        "especially with small datasets."
    ),
    "multires_noise_discount": "The guide recommends 0.1; it only works together with multires_noise_iterations.",
    "sample_prompts": (
        "Keep each sample prompt within 77 CLIP tokens; with several GPUs, make the number of prompts a multiple "
        "of the GPU count so none sits idle."
    ),
    "sample_sampler": (
        "Change it from ddim: the guide suggests euler_a for toony styles and k_dpm_2 for realistic ones."
    ),
    "sample_every_n_steps": "The guide's example samples every 100 steps.",
    "sample_every_n_epochs": "The guide mentions it as the alternative that overrides the step interval.",
    "gradient_accumulation_steps": "The guide's example accumulates 6 batches to get a bigger effective batch without more VRAM.",
    "train_batch_size": "The guide's example uses 8 (with gradient_accumulation_steps 6).",
    "gradient_checkpointing": "Turned on in the guide's example command.",
    "keep_tokens": "The guide's example keeps the first caption piece (1) fixed while shuffling.",
    "max_data_loader_n_workers": "The guide's example uses 8.",
    "log_with": "For TensorBoard the guide sets tensorboard together with logging_dir (e.g. /output_dir/logs).",
    "logging_dir": "The guide logs to a logs folder inside the output folder and views it with tensorboard --logdir.",
    "log_prefix": (
        "The guide names runs with a prefix such as xl-locon; remember it needs logging_dir, which the guide's "
        "main example lacks."
    ),
    "caption_separator": "The default comma fits the guide's tag-style captions.",
}


LYCORIS_ARG_DOCS: dict[str, str] = {
    "algo": (
        "Which LyCORIS method to train: lora/locon, loha, lokr, dylora, glora, full, diag-oft, boft, ia3 or "
        "tlora (case-insensitive; default lora). An unknown name ('oft' included) fails with a KeyError."
    ),
    "preset": (
        "Which layers get modules: full (default), full-lin, attn-mlp, attn-only, unet-only, "
        "unet-transformer-only, unet-convblock-only, ia3 (exact spelling), or a path to a preset TOML. Any other "
        "text is read as a file and fails with an empty AssertionError; preset=ia3 creates no modules on SDXL."
    ),
    "conv_dim": (
        "Rank for convolutions larger than 1x1 (the 3x3 convs); Linear and 1x1 layers keep network_dim. Omitted, "
        "3x3 convs are trained at network_dim; 0 removes them. Must be an integer."
    ),
    "conv_alpha": "Alpha for the 3x3 conv modules (their scale is conv_alpha/conv_dim); defaults to network_alpha.",
    "dropout": (
        "Neuron dropout rate; sd-scripts fills it from --network_dropout when absent. LoCon drops on the "
        "down-projection output (not with dora_wd); LoHa and LoKr only print that it is not implemented."
    ),
    "rank_dropout": "Probability of dropping individual ranks (LoCon) or update elements (other algorithms) each step; default 0.",
    "module_dropout": "Probability that a whole module is skipped for a step; default 0.",
    "use_tucker": (
        "Tucker decomposition for convs with kernels larger than 1x1 in LoCon, LoHa and LoKr; other algorithms "
        "ignore it. Only the text False (any case) is false: 0, no or an empty value switch it on."
    ),
    "use_cp": "Deprecated spelling of use_tucker: warns and copies its raw value onto use_tucker.",
    "use_conv_cp": (
        "Deprecated spelling of use_tucker: warns and copies its raw value over; use_conv_cp=False together with "
        "use_tucker=True leaves Tucker off."
    ),
    "disable_conv_cp": (
        "Deprecated and misleading: lycoris moves the given text over to use_tucker unchanged, so "
        "disable_conv_cp=False leaves Tucker off and disable_conv_cp=True switches it on."
    ),
    "use_scalar": (
        "Adds a trainable scalar in front of each update (LoCon, LoHa, LoKr, GLoRA), letting training set how "
        "strongly the adapter acts; on saving, the scalar is multiplied into the stored weights."
    ),
    "block_size": (
        "dylora only: how many ranks each training step updates (default 4); both network_dim and conv_dim have "
        "to be divisible by it or an assertion fails. diag-oft and boft take their block size from network_dim."
    ),
    "train_norm": "Also trains the LayerNorm/GroupNorm layers inside targeted blocks, for any algorithm (ia3 included).",
    "constraint": "Constraint strength for diag-oft and boft (constrained OFT); default 0, meaning none.",
    "constrain": "Deprecated spelling of constraint; warns and is copied over.",
    "rescaled": "diag-oft and boft only: adds a trainable rescale vector to the rotation.",
    "dora_wd": (
        "DoRA weight decomposition for LoCon, LoHa and LoKr, adding a trained magnitude vector; this is the key "
        "lycoris reads, weight_decompose is ignored."
    ),
    "wd_on_output": (
        "With dora_wd, normalise per output row (default True) rather than per input column."
    ),
    "bypass_mode": (
        "Computes the update as a separate branch (Wx + dWx) instead of merging it into the weight; for LoCon, "
        "LoHa, LoKr, GLoRA and T-LoRA. With algo=full it fails with a ValueError."
    ),
    "rs_lora": (
        "Rank-stabilised scaling alpha/sqrt(rank) instead of alpha/rank (LoCon, LoHa, LoKr, GLoRA); files are "
        "saved so that readers expecting alpha/rank still get the same strength."
    ),
    "full_matrix": "lokr only: never low-rank decompose the Kronecker factors.",
    "unbalanced_factorization": "lokr only: swaps which Kronecker factor gets the larger output dimension.",
    "decompose_both": (
        "lokr only: also low-rank the smaller Kronecker factor. Any non-empty text turns it on, "
        "decompose_both=False included; leave the key out entirely when it should stay off."
    ),
    "factor": (
        "lokr only: Kronecker split factor, an integer; -1 (default) picks the most balanced split. With small "
        "layers or a huge network_dim LoKr falls back to full matrices and alpha stops mattering."
    ),
    "loraplus_lr_ratio": (
        "LoRA+: learning-rate multiplier for the up-projection weights of U-Net and text-encoder modules. Only "
        "LoCon-style modules have those, so for LoHa, LoKr and others it silently does nothing."
    ),
    "loraplus_unet_lr_ratio": "LoRA+ multiplier for the U-Net's up-projection weights only, overriding loraplus_lr_ratio there.",
    "loraplus_text_encoder_lr_ratio": (
        "LoRA+ multiplier for the text encoders' up-projection weights only, overriding loraplus_lr_ratio there."
    ),
    "train_t5xxl": "For Flux training only (the T5 encoder); meaningless for SDXL.",
    "train_llm_adapter": "For Anima-family models only; meaningless for SDXL.",
    "warn_on_unmatched": (
        "Controls warnings about preset targets that match nothing, but from network_args it cannot be turned "
        "off: the text False is still truthy."
    ),
    "block_dims": (
        "Not read by lycoris.kohya: per-block ranks are a networks.lora feature, so under LyCORIS every layer "
        "silently gets network_dim (or conv_dim). The value still lands in the file's metadata."
    ),
    "block_alphas": (
        "Not read by lycoris.kohya; per-block alphas exist only in networks.lora, so LyCORIS uses network_alpha "
        "(or conv_alpha) everywhere without any warning."
    ),
    "rank_dropout_scale": (
        "Ignored when given in network_args: create_network never forwards it (only a preset TOML's per-module "
        "options can reach it)."
    ),
    "use_reentrant": "Ignored by lycoris.kohya (and by networks.lora); it has no effect on checkpointing.",
    "weight_decompose": "Ignored by lycoris.kohya's create_network; DoRA is enabled with dora_wd=True.",
}


LORA_ARG_DOCS: dict[str, str] = {
    "conv_dim": (
        "Enables LoCon-style training of the U-Net ResNet, down- and upsample blocks: their 3x3 convs get this "
        "rank. Without it networks.lora never touches 3x3 convs."
    ),
    "conv_alpha": "Alpha for the 3x3 conv modules; if conv_dim is given without it, 1.0 is used (not network_alpha).",
    "block_dims": (
        "Per-block U-Net ranks as exactly 23 comma-separated integers for SDXL (25 is the SD1.x count and fails "
        "an assertion). Slots 1-9 are input blocks, 10-12 middle, 13-21 output; 0 and 22 carry no modules; a 0 rank skips a block."
    ),
    "block_alphas": (
        "Per-block alphas, 23 comma-separated numbers for SDXL, used only together with block_dims; without it "
        "every block uses network_alpha (with a warning)."
    ),
    "conv_block_dims": "Per-block ranks for 3x3 convs, 23 integers for SDXL; also enables conv training in those blocks.",
    "conv_block_alphas": (
        "Per-block alphas for the 3x3 conv modules, 23 numbers for SDXL; missing values fall back to conv_alpha "
        "or 1.0."
    ),
    "down_lr_weight": (
        "Learning-rate multipliers for the 9 SDXL input blocks, as comma-separated numbers or a curve name "
        "(cosine, sine, linear, reverse_linear, zeros, optionally +base). Too few are padded with 1.0."
    ),
    "mid_lr_weight": "Learning-rate multipliers for the 3 SDXL middle-block slots, comma-separated.",
    "up_lr_weight": (
        "Learning-rate multipliers for the 9 SDXL output blocks, as comma-separated numbers or a curve name like "
        "down_lr_weight."
    ),
    "block_lr_zero_threshold": (
        "Blocks whose lr weight is at or below this value get no modules at all (default 0), shrinking the file."
    ),
    "rank_dropout": "Probability of zeroing individual ranks of each module per step, rescaling the rest; default none.",
    "module_dropout": "Probability that a whole LoRA module is skipped on a step; default none.",
    "loraplus_lr_ratio": (
        "LoRA+: the up-projection weights learn this many times faster than the down-projection (values around "
        "16 are common), for U-Net and text encoders."
    ),
    "loraplus_unet_lr_ratio": "LoRA+ ratio for U-Net modules only, taking precedence over loraplus_lr_ratio there.",
    "loraplus_text_encoder_lr_ratio": (
        "LoRA+ ratio for the text-encoder modules only, taking precedence over loraplus_lr_ratio there."
    ),
    "dropout": (
        "Ignored by networks.lora: sd-scripts adds this key for LyCORIS, while the built-in LoRA takes neuron "
        "dropout from --network_dropout."
    ),
}


NETWORK_ARGS_GUIDE_ADVICE: dict[str, str] = {
    "preset": "The guide trains with preset=full, covering every targeted layer of the U-Net and text encoders.",
    "algo": "The guide's SDXL example uses algo=locon.",
    "conv_dim": (
        "The guide's example uses conv_dim=256 with network_dim 8; lower conv ranks visibly change the style of "
        "the result, so experiment."
    ),
    "conv_alpha": (
        "The guide's example uses 4 (a conv scale of 1/64 at conv_dim 256); LyCORIS' author suggests 1 for "
        "LoCon and LoHa."
    ),
    "block_dims": (
        "The guide passes 25 values, but lycoris.kohya ignores block_dims and networks.lora needs 23 for SDXL; "
        "leave it out with LyCORIS."
    ),
    "block_alphas": "The guide passes 25 values of 0.0625; lycoris.kohya ignores them, so leave them out.",
}


ACCELERATE_DOCS: dict[str, str] = {
    "num_processes": (
        "How many training processes to start in total, normally one per GPU. Unset, accelerate uses its saved "
        "config, or else the number of visible GPUs."
    ),
    "num_machines": "How many computers take part in the run; 1 for a single workstation.",
    "machine_rank": "Index of this computer in a multi-machine run, 0 for the main one; irrelevant on one machine.",
    "gpu_ids": (
        "Comma-separated GPU indices this machine may use (e.g. 0,1) or all; accelerate exposes them through "
        "CUDA_VISIBLE_DEVICES. A multi-GPU run on one machine needs at least two."
    ),
    "num_cpu_threads_per_process": (
        "Sets OMP_NUM_THREADS for every training process, bounding the CPU threads each uses for CPU-side math."
    ),
    "main_process_ip": "Network address of the rank-0 machine in a multi-machine run.",
    "main_process_port": (
        "Port used to reach the rank-0 process; accelerate picks 29500 when unset, and 0 asks for a free port."
    ),
    "mixed_precision": (
        "accelerate's own precision default (no, fp16, bf16, fp8). sd-scripts passes its --mixed_precision to "
        "accelerate explicitly, so the script's flag is what decides for training."
    ),
    "dynamo_backend": (
        "accelerate's torch.compile backend default. sd-scripts always passes its own choice (off unless "
        "--torch_compile, then the script's --dynamo_backend), so this launcher option does not matter."
    ),
    "multi_gpu": (
        "Launches distributed data-parallel training on several GPUs; needs num_processes of at least 2 and more "
        "than one GPU in gpu_ids."
    ),
}


ACCELERATE_GUIDE_ADVICE: dict[str, str] = {
    "num_cpu_threads_per_process": "The guide launches with 2.",
    "num_processes": "For two GPUs the guide uses 2 together with multi_gpu.",
    "multi_gpu": "The guide's two-GPU launch sets it with num_processes 2, num_machines 1 and gpu_ids 0,1.",
    "num_machines": "The guide's two-GPU example runs on 1 machine.",
    "gpu_ids": "The guide's two-GPU example uses 0,1.",
}
