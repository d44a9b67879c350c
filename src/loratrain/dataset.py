"""Scan the image folders of a dataset plan: image sizes, captions, and what sd-scripts will skip or trip on.

Mirrors sd-scripts' `DreamBoothDataset`: images are the folder's `*.png *.jpg *.jpeg *.webp *.bmp`
(lower or upper case only, not recursive, no hidden files); a caption is `<stem><caption_extension>`
(or the face-crop name with the last four `_` parts dropped); only its first line is used unless
`enable_wildcard`. An empty caption file or one that is not UTF-8 stops sd-scripts, so both are
errors here. Each folder is listed once, so finding captions costs no extra system calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from loratrain.dataset_config import Subset
from loratrain.images import ImageHeaderError, image_size

# What sd-scripts' glob picks up (train_util.IMAGE_EXTENSIONS without the optional avif/jxl plugins).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG", ".WEBP", ".BMP"})
# Image files sd-scripts silently skips: worth telling the user about.
_SKIPPED_IMAGE_EXTENSIONS = frozenset({".gif", ".tif", ".tiff", ".avif", ".jxl", ".heic", ".heif", ".jfif", ".psd"})

Progress = Callable[[int], None]


@dataclass
class FolderScan:
    """What one subset folder holds. `images` keeps (file name, width, height) of readable images."""

    subset: Subset
    exists: bool = True
    images: list[tuple[str, int, int]] = field(default_factory=list)
    captions: list[str | None] = field(default_factory=list)  # per image: the caption text sd-scripts uses
    captions_found: int = 0
    missing_captions: list[str] = field(default_factory=list)
    empty_captions: list[str] = field(default_factory=list)  # zero-byte file: sd-scripts AssertionError
    blank_captions: list[str] = field(default_factory=list)  # first line is whitespace only: empty caption
    not_utf8_captions: list[str] = field(default_factory=list)  # sd-scripts UnicodeDecodeError
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # images: (file name, why)
    unreadable_captions: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # image-like files sd-scripts does not pick up
    orphan_captions: list[str] = field(default_factory=list)  # caption files with no image beside them

    @property
    def image_count(self) -> int:
        return len(self.images) + len(self.unreadable)


def list_folder(subset: Subset) -> tuple[list[str], set[str], list[str]] | None:
    """(image names sorted as sd-scripts sorts paths, all file names, skipped image-like names); None if no folder."""
    try:
        with os.scandir(subset.image_dir) as entries:
            names = {e.name for e in entries if e.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return None
    images, skipped = [], []
    for name in names:
        if name.startswith("."):
            continue  # glob("*") skips hidden files
        ext = os.path.splitext(name)[1]
        if ext in IMAGE_EXTENSIONS:
            images.append(name)
        elif ext.lower() in IMAGE_EXTENSIONS or ext.lower() in _SKIPPED_IMAGE_EXTENSIONS:
            skipped.append(name)
    images.sort()
    skipped.sort()
    return images, names, skipped


def scan_folder(subset: Subset, listing: tuple[list[str], set[str], list[str]] | None = None,
                progress: Progress | None = None, report_every: int = 256) -> FolderScan:
    """Read sizes and captions of every image in the subset's folder. Never raises for a bad file."""
    scan = FolderScan(subset=subset)
    if listing is None:
        listing = list_folder(subset)
    if listing is None:
        scan.exists = False
        return scan
    images, names, skipped = listing
    scan.unsupported = skipped
    folder = subset.image_dir
    ext = subset.caption_extension
    used_captions: set[str] = set()
    pending = 0
    for name in images:
        path = os.path.join(folder, name)
        try:
            width, height = image_size(path)
        except ImageHeaderError as exc:
            scan.unreadable.append((name, str(exc)))
        except OSError as exc:
            scan.unreadable.append((name, exc.strerror or str(exc)))
        else:
            scan.images.append((name, width, height))
            scan.captions.append(_caption_for(scan, folder, name, ext, names, used_captions))
        pending += 1
        if progress is not None and pending >= report_every:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    if ext:
        images_set = set(images)
        stems = {os.path.splitext(n)[0] for n in images_set}
        for name in sorted(names):
            if name.endswith(ext) and name not in used_captions and name[: -len(ext)] not in stems:
                scan.orphan_captions.append(name)
    return scan


def _caption_candidates(folder: str, name: str, ext: str) -> list[str]:
    # sd-scripts splits the whole path (folders included) on "_" for the face-crop name.
    base = os.path.join(folder, os.path.splitext(name)[0])
    candidates = [base + ext]
    tokens = base.split("_")
    if len(tokens) >= 5:
        candidates.append("_".join(tokens[:-4]) + ext)
    return candidates


def _caption_for(scan: FolderScan, folder: str, name: str, ext: str, names: set[str], used: set[str]) -> str | None:
    subset = scan.subset
    for cap_path in _caption_candidates(folder, name, ext):
        head, cap_name = os.path.split(cap_path)
        present = cap_name in names if head == folder else os.path.isfile(cap_path)
        if not present:
            continue
        used.add(cap_name)
        text = _read_caption(scan, cap_path, cap_name)
        scan.captions_found += 1
        if text is None:
            return None
        return _decorate(text, subset)
    scan.missing_captions.append(name)
    # sd-scripts falls back to the class tokens (folder mode: the folder name after N_), else "".
    return _decorate(subset.class_tokens, subset) if subset.class_tokens else None


def _read_caption(scan: FolderScan, cap_path: str, cap_name: str) -> str | None:
    try:
        with open(cap_path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        scan.unreadable_captions.append((cap_name, exc.strerror or str(exc)))
        return None
    if not raw:
        scan.empty_captions.append(cap_name)
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        scan.not_utf8_captions.append(cap_name)
        return None
    # Text mode turns \r\n and \r into \n; readlines() then splits on \n only.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if text.endswith(("\n", "\r")):
        lines.pop()
    if scan.subset.enable_wildcard:
        caption = "\n".join(line.strip() for line in lines if line.strip())
    else:
        caption = lines[0].strip()
    if not caption:
        scan.blank_captions.append(cap_name)
    return caption


def _decorate(caption: str, subset: Subset) -> str:
    if subset.caption_prefix:
        caption = subset.caption_prefix + " " + caption
    if subset.caption_suffix:
        caption = caption + " " + subset.caption_suffix
    return caption
