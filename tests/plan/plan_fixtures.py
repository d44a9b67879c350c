"""Real image folders for the plan tests (written with pillow)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def make_images(folder: Path, sizes: list[tuple[int, int]], ext: str = ".png", caption: str | None = "a photo",
                caption_ext: str = ".txt", start: int = 0) -> list[Path]:
    """One image per size (named img0, img1, ...), each with a caption file unless caption is None."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes, start=start):
        path = folder / f"img{i}{ext}"
        Image.new("RGB", size, (i * 7 % 256, 80, 160)).save(path, FORMATS[ext.lower()])
        if caption is not None:
            path.with_suffix(caption_ext).write_text(caption, encoding="utf-8")
        paths.append(path)
    return paths


# Six shapes that land in six different SDXL buckets (1024², step 32).
SIX_SHAPES = [(1024, 1024), (832, 1216), (1216, 832), (768, 1344), (1344, 768), (896, 1152)]
