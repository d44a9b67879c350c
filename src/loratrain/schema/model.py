"""[model]: the base checkpoint and where its pieces come from."""

from __future__ import annotations

from pydantic import constr

from loratrain.schema.common import Group, flag


class ModelArgs(Group):
    pretrained_model_name_or_path: constr(min_length=1) | None = flag(
        "The SDXL base model to train against: a diffusers folder (with model_index.json), a single-file "
        ".safetensors or .ckpt checkpoint, or a Hugging Face repo id (downloaded on first use).",
        advice="A local diffusers copy of the model works well; end a folder path with '/'. A .safetensors file "
        "is fine too.",
        example="/models/ponydiffusers/",
    )
    tokenizer_cache_dir: str | None = flag(
        "Folder where the two SDXL CLIP tokenizers are cached. When both sub-folders are there, training starts "
        "without network access; when not, the first run downloads them into it.",
        interacts=("model.pretrained_model_name_or_path",),
        example="/models/tokenizers",
    )
    vae: str | None = flag(
        "A separate VAE to use instead of the one inside the base model (file or diffusers folder).",
        interacts=("precision.no_half_vae",),
    )
    lowram: bool | None = flag(
        "Load the models straight onto the GPU instead of staging them in system memory. Saves host RAM "
        "(useful with several GPUs and a big model) at the cost of some VRAM.",
        advice="Turn it on when the machine runs out of system memory, e.g. two GPUs each loading a large model.",
        example=True,
    )
    disable_mmap_load_safetensors: bool | None = flag(
        "Read .safetensors checkpoints fully into memory instead of memory-mapping them (helps on some network "
        "file systems and WSL).",
    )
