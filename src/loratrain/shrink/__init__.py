"""`loratrain shrink`: resize trained LoRA / LoCon files (torch + safetensors only, imported lazily)."""
