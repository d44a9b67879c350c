"""loratrain: one TOML file per SDXL LoRA/LyCORIS training run with kohya-ss sd-scripts."""

__version__ = "0.1.0"
