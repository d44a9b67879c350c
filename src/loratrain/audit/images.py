"""Decode one image the way sd-scripts does and record what it would do to the pixels.

sd-scripts 48d368f reads every training image with `load_image` (library/train_util.py:2948): `Image.open(path)`,
then `convert("RGB")` unless the mode already is RGB (RGBA with `alpha_mask`), then `np.array(..., np.uint8)`.
Nothing else: no EXIF transpose, no colour management, no alpha compositing, no tone mapping. So the audit
decodes with Pillow too, in loratrain's own interpreter (the `audit` extra): the decoder is the same library,
the questions asked (is the file complete, which mode, what does `convert("RGB")` do to it) are answered by
Pillow's own code, and no training environment needs to be started. Pillow versions differ in codecs, not in
these mode conversions.

`inspect(path)` is the unit of work of the process pool, so it takes and returns plain data only.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

# Modes convert("RGB") damages: 16-bit and 32-bit greyscale and float are clipped to 0..255, not scaled.
HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
# Modes that carry an alpha channel; palette images may carry transparency in info["transparency"].
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# What each file extension promises (Pillow's format names).
EXTENSION_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}

HASH_SIDE = 8  # dHash: an 8x8 grid of gradient signs per direction, 128 bits in all


def require_pillow() -> None:
    """Raise MissingExtra (one line naming the `audit` extra, exit 2) when Pillow or numpy is not installed."""
    from loratrain.errors import require_extra

    require_extra("audit", "audit")


def inspect(path: str) -> dict[str, Any]:
    """Facts about one image file: {"size", "format", "mode", "orientation", "transparent", "clipped", "sha",
    "dhash"}, or {"error", "error_kind"} when Pillow cannot decode it. Never raises for a bad file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return {"error": exc.strerror or str(exc), "error_kind": "undecodable"}
    facts: dict[str, Any] = {"sha": hashlib.blake2b(data, digest_size=16).hexdigest(), "bytes": len(data)}
    import io

    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        facts.update(error="Pillow does not recognise it as an image", error_kind="undecodable")
        return facts
    except (OSError, ValueError, SyntaxError) as exc:
        facts.update(error=_short(exc) or "not an image Pillow can read", error_kind="undecodable")
        return facts
    facts.update(format=im.format, mode=im.mode, size=list(im.size))
    try:
        im.load()  # the full decode: a truncated file passes open() and fails here, as in sd-scripts' convert()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        facts.update(error=_short(exc) or "image data cannot be decoded", error_kind="truncated")
        return facts
    try:
        facts["orientation"] = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block: sd-scripts never reads it either
        facts["orientation"] = 1
    facts["transparent"] = _transparent_count(im)
    facts["clipped"] = _clipped_fraction(im)
    facts["dhash"] = _dhash(im)
    return facts


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def _transparent_count(im) -> int | None:
    """How many pixels are not fully opaque, or None when the image has no alpha at all."""
    import numpy as np

    if im.mode in ALPHA_MODES:
        alpha = im.getchannel("A")
    elif "transparency" in im.info:  # palette or colour-key transparency (PNG tRNS, GIF)
        alpha = im.convert("RGBA").getchannel("A")
    else:
        return None
    return int(np.count_nonzero(np.asarray(alpha) < 255))


def _clipped_fraction(im) -> float | None:
    """For modes convert("RGB") clips: the share of pixels above 255 (they turn white). None for other modes."""
    if im.mode not in HIGH_BIT_MODES:
        return None
    import numpy as np

    a = np.asarray(im)
    return float(np.count_nonzero(a > 255)) / max(1, a.size)


def _dhash(im) -> str:
    """A 128-bit difference hash (rows and columns of a box-filtered 9x8 / 8x9 greyscale image), as hex.

    Box filtering averages every source pixel, so resizing or re-encoding the same picture moves few bits;
    near duplicates are pairs whose hashes differ in few bits (see duplicates.py).
    """
    import numpy as np
    from PIL import Image

    if im.mode in HIGH_BIT_MODES:
        grey = im.convert("F")
    else:
        grey = im.convert("L")
    side = HASH_SIDE
    rows = np.asarray(grey.resize((side + 1, side), Image.Resampling.BOX), dtype=np.float32)
    cols = np.asarray(grey.resize((side, side + 1), Image.Resampling.BOX), dtype=np.float32)
    bits = np.concatenate([(rows[:, 1:] > rows[:, :-1]).ravel(), (cols[1:, :] > cols[:-1, :]).ravel()])
    return np.packbits(bits).tobytes().hex()


def decode_bare(path: str) -> int:
    """The baseline of benchmarks/audit_speed.py: what sd-scripts' load_image does, nothing more."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        if image.mode != "RGB":
            image = image.convert("RGB")
        return int(np.asarray(image, np.uint8).shape[0])


def extension_format(name: str) -> str | None:
    return EXTENSION_FORMATS.get(os.path.splitext(name)[1].lower())


def thumbnail(path: str, side: int = 160) -> tuple[bytes, tuple[int, int]] | None:
    """A JPEG thumbnail (longest side `side`) of what sd-scripts would train (no EXIF transpose, alpha dropped
    the way convert("RGB") drops it), for the HTML page; None when the file cannot be decoded."""
    import io

    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (side * 2, side * 2))
            rgb = im.convert("RGB")
            rgb.thumbnail((side, side), Image.Resampling.BILINEAR)
            out = io.BytesIO()
            rgb.save(out, "JPEG", quality=80)
            return out.getvalue(), rgb.size
    except Exception:
        return None
