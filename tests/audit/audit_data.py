"""Generated datasets for the audit tests: distinct smooth pictures, captions, sd-scripts caches, and one
planted defect per file (`plant`). Tiny images (128 px) keep the tests quick."""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

from helpers import run_cli

TRIGGER = "mychar"
SIDE = 128  # the resolution, and the side of the clean images (one 128x128 bucket)
L = SIDE // 8  # their latents
NAME = f"{SIDE:04d}x{SIDE:04d}"


def smooth(seed: int, size=(SIDE, SIDE), mode: str = "RGB"):
    """A distinct, photo-like (smooth) picture: 6x6 random colours upsampled."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = (rng.random((6, 6, 3)) * 255).astype("uint8")
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC).convert(mode)


def save(im, path: Path, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt or {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[path.suffix], **kw)
    return path


def caption(path: Path, text: str | bytes) -> None:
    target = path.with_suffix(".txt")
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")


def write_npz(path: Path, **arrays) -> Path:
    import numpy as np

    np.savez(path, **arrays)
    return path


def latents(h: int, w: int) -> dict:
    import numpy as np

    return {
        "latents": np.zeros((4, h, w), np.float32),
        "original_size": np.array([w * 8, h * 8]),
        "crop_ltrb": np.array([0, 0, w * 8, h * 8]),
    }


def set_mtime(path: Path, seconds_ago: float) -> None:
    t = os.stat(path).st_mtime - seconds_ago
    os.utime(path, (t, t))


def config(tmp_path: Path, extra: str = "", dataset: str = "") -> Path:
    path = tmp_path / "run.toml"
    path.write_text(
        f"""
[model]
pretrained_model_name_or_path = "/models/sdxl.safetensors"
[dataset]
train_data_dir = "{tmp_path / "train"}"
resolution = "{SIDE},{SIDE}"
caption_extension = ".txt"
{dataset}
[buckets]
enable_bucket = true
min_bucket_reso = 64
max_bucket_reso = 256
bucket_reso_steps = 32
[network]
network_module = "networks.lora"
[saving]
output_dir = "{tmp_path / "out"}"
{extra}""",
        encoding="utf-8",
    )
    return path


def clean_folder(folder: Path, count: int, start: int = 0, trigger: str = TRIGGER) -> list[Path]:
    """`count` distinct images, each with a distinct caption that starts with the trigger; no tag but the
    trigger in more than a fifth of them."""
    paths = []
    colours = ["red", "blue", "green", "grey", "white", "black", "brown", "pink", "gold", "teal"]
    places = ["street", "beach", "forest", "room", "park", "office", "garden", "bridge", "market", "field"]
    for i in range(start, start + count):
        path = save(smooth(1000 + i), folder / f"img{i:04d}.png")
        caption(path, f"{trigger}, {colours[i % 10]} shirt, {places[(i // 10) % 10]}, pose {i}")
        paths.append(path)
    return paths


def audit_json(cfg: Path, *extra: str) -> tuple[int, dict]:
    result = run_cli("audit", str(cfg), "--json", *extra)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def kinds_by_file(data: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in data["findings"]:
        out.setdefault(f["file"], set()).add(f["kind"])
    return out


# --- the planted defects ---------------------------------------------------------------------------------------


def cmyk_jpeg(path: Path) -> Path:
    return save(smooth(7, mode="CMYK"), path, "JPEG")


def rotated_jpeg(path: Path) -> Path:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    return save(smooth(8), path, "JPEG", exif=exif.tobytes())


def plant(tmp_path: Path) -> dict[str, str]:
    """The defects dataset: returns {file: kind} of what was planted (one defect per file)."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "train" / f"10_{TRIGGER}"
    clean_folder(folder, 12)
    planted: dict[Path, str] = {}

    def img(name: str, seed: int, kind: str | None = None, text: str | bytes | None = None, **kw) -> Path:
        path = save(smooth(seed, **kw), folder / name)
        caption(path, text if text is not None else f"{TRIGGER}, planted {name}")
        if kind:
            planted[path] = kind
        return path

    # images
    bad = folder / "undecodable.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + struct.pack(">II", 64, 64) + b"garbage" * 10)
    caption(bad, f"{TRIGGER}, broken")
    planted[bad] = "undecodable"
    buf = io.BytesIO()
    smooth(2, size=(256, 256)).save(buf, "JPEG")
    cut = folder / "truncated.jpg"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    caption(cut, f"{TRIGGER}, cut")
    planted[cut] = "truncated"
    deep = folder / "gray16.png"
    Image.fromarray((np.linspace(0, 65535, SIDE * SIDE).reshape(SIDE, SIDE)).astype(np.uint16)).save(deep)
    caption(deep, f"{TRIGGER}, deep")
    planted[deep] = "high_bit_depth"
    liar = save(smooth(3), folder / "liar.png", "JPEG")
    caption(liar, f"{TRIGGER}, liar")
    planted[liar] = "wrong_extension"
    rot = rotated_jpeg(folder / "rotated.jpg")
    caption(rot, f"{TRIGGER}, turned")
    planted[rot] = "exif_rotated"
    rgba = smooth(4, mode="RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(SIDE, dtype=np.uint8) * 8, (SIDE, 1))))
    planted[save(rgba, folder / "alpha.png")] = "transparent"
    caption(folder / "alpha.png", f"{TRIGGER}, cut out")
    planted[cmyk_jpeg(folder / "cmyk.jpg")] = "cmyk"
    caption(folder / "cmyk.jpg", f"{TRIGGER}, print")
    img("small.png", 5, "upscaled", size=(SIDE // 2, SIDE // 2))
    img("wide.png", 6, "cropped", size=(SIDE * 4, SIDE // 2))
    (folder / "skipped.gif").write_bytes(b"GIF89a")
    planted[folder / "skipped.gif"] = "unsupported_file"
    # duplicates
    a = img("dup_a.png", 9)
    twin = folder / "dup_b.png"
    twin.write_bytes(a.read_bytes())
    caption(twin, f"{TRIGGER}, the copy")
    planted[twin] = "duplicate_exact"
    img("near_a.png", 10)
    near = save(smooth(10).resize((96, 96)), folder / "near_b.jpg", quality=50)
    caption(near, f"{TRIGGER}, the re-encode")
    planted[near] = "duplicate_near"
    img("stem.jpg", 11)
    img("stem.png", 12, "same_stem")
    # captions
    nocap = save(smooth(13), folder / "nocap.png")
    planted[nocap] = "caption_missing"
    img("empty.png", 14, text="")
    planted[folder / "empty.txt"] = "caption_empty"
    img("latin1.png", 15, text=f"{TRIGGER}, café".encode("latin-1"))
    planted[folder / "latin1.txt"] = "caption_not_utf8"
    img("blank.png", 16, text=f"\n{TRIGGER}, second line")
    planted[folder / "blank.txt"] = "caption_blank"
    img("bom.png", 17, text=f"\ufeff{TRIGGER}, windows")
    planted[folder / "bom.txt"] = "caption_bom"
    img("notrigger.png", 18, text="a person, outdoors")
    planted[folder / "notrigger.txt"] = "trigger_missing"
    img("shuffled.png", 19, text=f"outdoors, {TRIGGER}, smiling")
    planted[folder / "shuffled.txt"] = "trigger_shuffled"
    img("dupcap_a.png", 20, text=f"{TRIGGER}, same words")
    img("dupcap_b.png", 21, text=f"{TRIGGER}, same words")
    planted[folder / "dupcap_b.txt"] = "caption_duplicate"
    img("long.png", 22, text=TRIGGER + ", " + ", ".join(f"detail{i} word{i}" for i in range(60)))
    planted[folder / "long.txt"] = "caption_too_long"
    # latent caches (cache_latents_to_disk): the images land in the SIDE x SIDE bucket
    img("oldstyle.png", 23)
    planted[write_npz(folder / "oldstyle.npz", **latents(L, L))] = "latent_cache_old_style"
    stale = img("stale.png", 24)
    planted[write_npz(folder / f"stale_{NAME}_sdxl.npz", **latents(L, L))] = "latent_cache_stale"
    set_mtime(folder / f"stale_{NAME}_sdxl.npz", 3600)
    assert os.stat(stale).st_mtime > os.stat(folder / f"stale_{NAME}_sdxl.npz").st_mtime
    img("shape.png", 25)
    planted[write_npz(folder / f"shape_{NAME}_sdxl.npz", **latents(L // 2, L // 2))] = "latent_cache_shape"
    img("resized.png", 26)
    planted[write_npz(folder / f"resized_0192x{SIDE:04d}_sdxl.npz", **latents(L, L))] = "latent_cache_size"
    img("badzip.png", 27)
    (folder / f"badzip_{NAME}_sdxl.npz").write_bytes(b"PK not a zip")
    planted[folder / f"badzip_{NAME}_sdxl.npz"] = "cache_unreadable"
    img("twocache.png", 28)
    write_npz(folder / f"twocache_{NAME}_sdxl.npz", **latents(L, L))
    write_npz(folder / "twocache_0192x0128_sdxl.npz", **latents(L, L))
    # (two caches for one stem: sd-scripts' pick depends on the directory order)
    planted[folder / "twocache.png"] = "latent_cache_ambiguous"
    for path in folder.glob("*.npz"):  # every cache newer than its image, except the stale one
        if path.name != f"stale_{NAME}_sdxl.npz":
            os.utime(path, (os.stat(path).st_mtime + 60,) * 2)
    # a second folder: a tag in every caption
    tagged = tmp_path / "train" / "5_other"
    for i in range(10):
        caption(save(smooth(2000 + i), tagged / f"t{i}.png"), f"otherchar, solo, view {i}")
    planted[tagged] = "tag_everywhere"
    return {str(p): kind for p, kind in planted.items()}
