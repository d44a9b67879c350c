"""Latent, text-encoder and image-info caches, named and judged exactly as sd-scripts 48d368f does.

What sd-scripts does (file:line at 48d368f):
- The latents caching strategy is set before the dataset is built (train_network.py:513, dataset at :556), so
  every DreamBooth folder is globbed for `*_sdxl.npz` and each image's size is read from the name of the first
  cache whose path starts with the image's path minus its extension (library/train_util.py:2001-2031, the name
  parsed by library/strategy_base.py:412-414). An edited or replaced image whose old cache is still there is
  bucketed by the old size, with or without latent caching.
- With `cache_latents_to_disk` (which turns `cache_latents` on, train_util.py:4424), the cache of an image is
  the old-style `<stem>.npz` whenever one exists, else `<stem>_WWWWxHHHH_sdxl.npz` (library/strategy_sd.py:
  137-157). A cache counts as valid when it holds a `latents` key (plus `latents_flipped` with flip_aug,
  `alpha_mask` with alpha_mask), or merely exists with `skip_cache_check` (strategy_base.py:427-472; sd-scripts
  passes multi_resolution=False, so the shape is not checked); the latents are then loaded without a check
  either (strategy_base.py:563-596). A cache that np.load cannot open stops the run (strategy_base.py:468-470).
- With `cache_text_encoder_outputs_to_disk` (which turns `cache_text_encoder_outputs` on,
  library/sdxl_train_util.py:372), `<stem>_te_outputs.npz` is valid when it holds hidden_state1, hidden_state2
  and pool2 (library/strategy_sdxl.py:223-254): an edited caption is not looked at.
- With a subset's `cache_info`, `metadata_cache.json` in the folder supplies every image's size and caption once
  it exists, unchecked (train_util.py:1896, 1977-1995).

Shapes are read from the .npy headers inside the .npz (a zip), never the arrays.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from loratrain.audit.findings import Finding, finding

OLD_SUFFIX = ".npz"  # strategy_sd.py:137
SDXL_SUFFIX = "_sdxl.npz"  # strategy_sd.py:139
TE_SUFFIX = "_te_outputs.npz"  # strategy_sdxl.py:223
INFO_CACHE = "metadata_cache.json"  # train_util.py:1896
LATENT_STRIDE = 8  # strategy_sd.py:160
TE_KEYS = ("hidden_state1", "hidden_state2", "pool2")
_SIZED = re.compile(r"^(?P<stem>.*)_(?P<w>\d+)x(?P<h>\d+)_sdxl\.npz$")


@dataclass(frozen=True)
class CacheSettings:
    latents_to_disk: bool = False
    te_to_disk: bool = False
    skip_check: bool = False

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> CacheSettings:
        return cls(
            latents_to_disk=bool(args.get("cache_latents_to_disk")),
            te_to_disk=bool(args.get("cache_text_encoder_outputs_to_disk")),
            skip_check=bool(args.get("skip_cache_check")),
        )


def npz_shapes(path: str) -> dict[str, tuple[int, ...]]:
    """{array name: shape} of an .npz file from its .npy headers. Raises ValueError/OSError when np.load could
    not open it either."""
    from numpy.lib import format as npy

    shapes = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if not name.endswith(".npy"):
                continue
            with zf.open(name) as fp:
                version = npy.read_magic(fp)
                reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, _fortran, _dtype = reader(fp)
            shapes[name[:-4]] = tuple(shape)
    return shapes


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def sized_caches(names: set[str]) -> list[str]:
    """The folder's `*_sdxl.npz` names in the order sd-scripts walks them (sorted by the part before the last
    two `_`; Python's sort is stable, so equal keys keep the directory order, as glob's do)."""
    found = [n for n in names if n.endswith(SDXL_SUFFIX)]
    return sorted(found, key=lambda n: n.rsplit("_", maxsplit=2)[0])


def sizes_from_names(images: list[str], caches: list[str]) -> dict[str, tuple[str, tuple[int, int] | None]]:
    """image name -> (cache name, size read from it; None where sd-scripts' int() would fail), for the images
    that get a size from a cache name: sd-scripts' merge walk over sorted images and sorted cache names."""
    out: dict[str, tuple[str, tuple[int, int] | None]] = {}
    index = 0
    for image in images:  # sorted, as glob_images sorts them
        stem = os.path.splitext(image)[0]
        n = len(stem)
        while index < len(caches):
            if caches[index][:n] > stem:
                break
            if caches[index][:n] == stem:
                out[image] = (caches[index], _size_in_name(caches[index]))
                break
            index += 1
    return out


def _size_in_name(name: str) -> tuple[int, int] | None:
    part = os.path.splitext(name)[0].split("_")[-2].split("x")
    try:
        w, h = part
        return int(w), int(h)
    except ValueError:
        return None


def audit_folder(
    folder: str,
    names: set[str],
    images: list[tuple[str, int, int]],
    bucket_of,
    caption_extension: str,
    settings: CacheSettings,
    flip_aug: bool = False,
    alpha_mask: bool = False,
    cache_info: bool = False,
) -> list[Finding]:
    """Every cache finding of one image folder. `images`: (name, width, height) from the headers, sorted;
    `bucket_of(w, h)` the bucket sd-scripts assigns."""
    out: list[Finding] = []
    join = os.path.join
    sized = sized_caches(names)
    from_names = sizes_from_names([n for n, _w, _h in images], sized)
    stems: dict[str, list[str]] = {}
    for name in sized:
        m = _SIZED.match(name)
        if m:
            stems.setdefault(m["stem"], []).append(name)
    for name, width, height in images:
        stem = os.path.splitext(name)[0]
        image_path = join(folder, name)
        size = (width, height)
        mine = stems.get(stem, [])
        if len(mine) > 1:
            out.append(
                finding(
                    image_path,
                    "latent_cache_ambiguous",
                    f"{len(mine)} latent caches for this image ({', '.join(sorted(mine))}); sd-scripts takes the size "
                    "from whichever its directory listing gives first",
                    fix="delete all but the one named with the image's size (or all: sd-scripts rebuilds them)",
                    image=image_path,
                )
            )
        if name in from_names:
            cache, named = from_names[name]
            cache_path = join(folder, cache)
            if named is None:
                out.append(
                    finding(
                        cache_path,
                        "cache_unreadable",
                        f"sd-scripts reads {name}'s size from this cache's name and stops: no WIDTHxHEIGHT before "
                        "_sdxl.npz",
                        fix="rename or delete it",
                        image=image_path,
                        deletable=cache.startswith(stem + "_"),
                    )
                )
            elif named != size:
                own = (_SIZED.match(cache) or {"stem": None})["stem"] == stem
                out.append(
                    finding(
                        cache_path,
                        "latent_cache_size",
                        f"sd-scripts buckets {name} ({width}x{height}) as {named[0]}x{named[1]}, the size in this "
                        "cache's name"
                        + ("" if own else " (another image's cache whose name starts with this image's stem)"),
                        fix="delete it (--fix-cache)" if own else "rename one of the two images",
                        image=image_path,
                        deletable=own,
                    )
                )
                size = named  # what sd-scripts goes on with
        if settings.latents_to_disk:
            out.extend(_latent_cache(folder, name, image_path, size, bucket_of, settings, flip_aug, alpha_mask, names))
        if settings.te_to_disk:
            out.extend(_te_cache(folder, stem, caption_extension, settings, names, image_path))
    if cache_info and INFO_CACHE in names:
        out.extend(_info_cache(folder, [n for n, _w, _h in images], caption_extension, names))
    return out


def _latent_cache(folder, name, image_path, size, bucket_of, settings, flip_aug, alpha_mask, names) -> list[Finding]:
    stem = os.path.splitext(name)[0]
    old = stem + OLD_SUFFIX
    cache = old if old in names else f"{stem}_{size[0]:04d}x{size[1]:04d}{SDXL_SUFFIX}"
    if cache not in names:
        return []
    path = os.path.join(folder, cache)
    try:
        shapes = npz_shapes(path)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        image = image_path
        if settings.skip_check:
            reason = "skip_cache_check: sd-scripts loads it without looking and then fails"
        else:
            reason = "sd-scripts' np.load raises and the run stops"
        return [finding(path, "cache_unreadable", f"not a readable .npz ({exc}); {reason}", fix="delete it",
                        image=image, deletable=True)]  # fmt: skip
    wanted = ["latents"] + (["latents_flipped"] if flip_aug else []) + (["alpha_mask"] if alpha_mask else [])
    if not settings.skip_check and any(k not in shapes for k in wanted):
        return []  # sd-scripts encodes this image again and adds the keys: nothing stale is used
    out = []
    bw, bh = bucket_of(*size)
    expect = (bh // LATENT_STRIDE, bw // LATENT_STRIDE)
    got = shapes.get("latents")
    if got is not None and tuple(got[1:3]) != expect:
        out.append(
            finding(
                path,
                "latent_cache_shape",
                f"latents are {got[2] * LATENT_STRIDE}x{got[1] * LATENT_STRIDE} (shape {list(got)}) but {name} lands "
                f"in the {bw}x{bh} bucket; sd-scripts reuses them unchecked",
                fix="delete it (--fix-cache) so sd-scripts encodes the image again",
                image=image_path,
                deletable=True,
            )
        )
    image_time, cache_time = _mtime(image_path), _mtime(path)
    if image_time is not None and cache_time is not None and cache_time < image_time:
        out.append(
            finding(
                path,
                "latent_cache_stale",
                f"older than {name}: sd-scripts trains on the latents of the image as it was",
                fix="delete it (--fix-cache) so sd-scripts encodes the image again",
                image=image_path,
                deletable=True,
            )
        )
    if cache == old and not out:
        out.append(
            finding(
                path,
                "latent_cache_old_style",
                f"sd-scripts reuses an old-style {old} before any {stem}_WxH{SDXL_SUFFIX}, whatever model made it",
                fix=f"delete it if it is not from this model's VAE; sd-scripts then writes {stem}_"
                f"{size[0]:04d}x{size[1]:04d}{SDXL_SUFFIX}",
                image=image_path,
            )
        )
    return out


def _te_cache(folder, stem, caption_extension, settings, names, image_path) -> list[Finding]:
    cache = stem + TE_SUFFIX
    caption = stem + caption_extension
    if cache not in names or caption not in names:
        return []
    path = os.path.join(folder, cache)
    try:
        shapes = npz_shapes(path)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        return [finding(path, "cache_unreadable", f"not a readable .npz ({exc}); sd-scripts' np.load raises",
                        fix="delete it", image=image_path, deletable=True)]  # fmt: skip
    if not settings.skip_check and any(k not in shapes for k in TE_KEYS):
        return []
    cap_time, cache_time = _mtime(os.path.join(folder, caption)), _mtime(path)
    if cap_time is not None and cache_time is not None and cache_time < cap_time:
        return [
            finding(
                path,
                "te_cache_stale",
                f"older than {caption}: sd-scripts trains on the text encoders' outputs for the old caption",
                fix="delete it (--fix-cache) so sd-scripts encodes the caption again",
                image=image_path,
                deletable=True,
            )
        ]
    return []


def _info_cache(folder: str, images: list[str], caption_extension: str, names: set[str]) -> list[Finding]:
    path = os.path.join(folder, INFO_CACHE)
    cache_time = _mtime(path) or 0
    newer = []
    for name in images:
        for candidate in (name, os.path.splitext(name)[0] + caption_extension):
            if candidate in names and (_mtime(os.path.join(folder, candidate)) or 0) > cache_time:
                newer.append(candidate)
    if not newer:
        return []
    return [
        finding(
            path,
            "info_cache_stale",
            f"{len(newer)} image/caption file(s) changed after it was written (e.g. {newer[0]}); with cache_info "
            "sd-scripts takes every size and caption from it unchecked",
            fix="delete it (--fix-cache) so sd-scripts reads the folder again",
            deletable=True,
        )
    ]
