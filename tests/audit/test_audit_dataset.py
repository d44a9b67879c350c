"""`loratrain audit` on generated datasets: one planted defect per file, every one named with its file; a clean
dataset of several hundred images gets no warning. Images are tiny (128 px) so the tests stay quick."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest
from helpers import run_cli

TRIGGER = "mychar"
SIDE = 128  # the resolution, and the side of the clean images (one 128x128 bucket)
L = SIDE // 8  # their latents
NAME = f"{SIDE:04d}x{SIDE:04d}"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORATRAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LORATRAIN_AUDIT_WORKERS", "2")


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


def test_every_planted_defect_is_named_with_its_file(tmp_path):
    planted = plant(tmp_path)
    cfg = config(tmp_path, dataset="shuffle_caption = true\nkeep_tokens = 1\ncache_latents_to_disk = true\n")
    code, data = audit_json(cfg)
    found = kinds_by_file(data)
    missed = {f: k for f, k in planted.items() if k not in found.get(f, set())}
    assert missed == {}, json.dumps(data["findings"], indent=1)
    assert code == 2 and data["ok"] is False  # errors: undecodable, truncated, 16-bit, stale caches
    # The clean images of the same folder get nothing.
    clean = [f for f in found if "/img0" in f]
    assert clean == []
    # Each finding has the documented fields, and each error is also a problem in the shared --json shape.
    assert all(set(f) == {"file", "kind", "severity", "message", "fix", "image"} for f in data["findings"])
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    assert {(p["file"], p["key"]) for p in data["problems"]} == {(f["file"], f["kind"]) for f in errors}
    # Nothing in the dataset changed without --fix-cache.
    assert (tmp_path / "train" / f"10_{TRIGGER}" / f"stale_{NAME}_sdxl.npz").exists()


def test_text_encoder_cache_older_than_its_caption(tmp_path):
    folder = tmp_path / "train" / f"10_{TRIGGER}"
    clean_folder(folder, 3)
    import numpy as np

    cache = write_npz(folder / "img0001_te_outputs.npz", hidden_state1=np.zeros(2), hidden_state2=np.zeros(2),
                      pool2=np.zeros(2))  # fmt: skip
    set_mtime(cache, 600)
    cfg = config(
        tmp_path,
        extra="",
        dataset="cache_text_encoder_outputs_to_disk = true",
    )
    cfg.write_text(cfg.read_text().replace('network_module = "networks.lora"', 'network_module = "networks.lora"\n'
                   "network_train_unet_only = true"))  # fmt: skip
    code, data = audit_json(cfg)
    assert kinds_by_file(data) == {str(cache): {"te_cache_stale"}}
    assert code == 2


def test_fix_cache_deletes_only_caches_sd_scripts_would_wrongly_reuse(tmp_path):
    plant(tmp_path)
    folder = tmp_path / "train" / f"10_{TRIGGER}"
    (folder / "twocache_0192x0128_sdxl.npz").unlink()  # which of two caches sd-scripts picks is up to the file system
    before = {p.name for p in folder.iterdir()}
    cfg = config(tmp_path, dataset="shuffle_caption = true\nkeep_tokens = 1\ncache_latents_to_disk = true\n")
    result = run_cli("audit", str(cfg), "--fix-cache")
    gone = before - {p.name for p in folder.iterdir()}
    assert gone == {
        f"stale_{NAME}_sdxl.npz",
        f"shape_{NAME}_sdxl.npz",
        f"resized_0192x{SIDE:04d}_sdxl.npz",
        f"badzip_{NAME}_sdxl.npz",
    }
    for name in sorted(gone):
        assert f"deleted stale cache: {folder / name}" in result.stdout
    # The old-style cache is reported but kept: nothing says it is wrong.
    assert (folder / "oldstyle.npz").exists()
    code, data = audit_json(cfg)
    kinds = {f["kind"] for f in data["findings"]}
    assert not kinds & {"latent_cache_stale", "latent_cache_shape", "latent_cache_size", "cache_unreadable"}


def test_clean_dataset_of_several_hundred_images_gets_no_warning(tmp_path):
    clean_folder(tmp_path / "train" / f"10_{TRIGGER}", 300)
    clean_folder(tmp_path / "train" / "3_second", 60, start=300, trigger="second")
    cfg = config(tmp_path, dataset="shuffle_caption = true\nkeep_tokens = 1\ncache_latents_to_disk = true\n")
    result = run_cli("audit", str(cfg))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found" in result.stdout
    assert "360 images" in result.stdout
    code, data = audit_json(cfg, "--strict")
    assert (code, data["findings"], data["ok"]) == (0, [], True)
    assert data["decoded"] == 0  # the second audit reused the first one's results
    assert [d["trigger"] for d in data["folders"]] == [TRIGGER, "second"] or sorted(
        d["trigger"] for d in data["folders"]
    ) == sorted([TRIGGER, "second"])


def test_strict_makes_warnings_fail(tmp_path):
    folder = tmp_path / "train" / f"10_{TRIGGER}"
    clean_folder(folder, 3)
    save(smooth(5, size=(SIDE // 2, SIDE // 2)), folder / "small.png")
    caption(folder / "small.png", f"{TRIGGER}, small")
    cfg = config(tmp_path)
    assert run_cli("audit", str(cfg)).returncode == 0
    result = run_cli("audit", str(cfg), "--strict")
    assert result.returncode == 2
    assert "upscaled" in result.stdout and str(folder / "small.png") in result.stdout


def test_trigger_option_and_json_failure_shape(tmp_path):
    folder = tmp_path / "train" / f"10_{TRIGGER}"
    clean_folder(folder, 3)
    cfg = config(tmp_path)
    code, data = audit_json(cfg, "--trigger", "ohwx")
    assert code == 0
    assert {f["kind"] for f in data["findings"]} == {"trigger_missing"}
    assert len(data["findings"]) == 3
    missing = tmp_path / "nothing.toml"
    result = run_cli("audit", str(missing), "--json")
    body = json.loads(result.stdout)
    assert result.returncode == 2 and body["ok"] is False
    assert set(body) == {"ok", "problems"}
    assert set(body["problems"][0]) == {"file", "line", "key", "severity", "message", "fix"}


def test_npz_shapes_reads_headers_only(tmp_path):
    from loratrain.audit.caches import npz_shapes

    path = write_npz(tmp_path / "x.npz", **latents(12, 9))
    assert npz_shapes(str(path))["latents"] == (4, 12, 9)
    with zipfile.ZipFile(path) as zf:
        assert "latents.npy" in zf.namelist()
