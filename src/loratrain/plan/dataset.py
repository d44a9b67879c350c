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

from loratrain.errors import ConfigError, Problem
from loratrain.plan.dataset_config import Subset
from loratrain.plan.images import ImageHeaderError, image_header

# What sd-scripts' glob picks up (train_util.IMAGE_EXTENSIONS without the optional avif/jxl plugins).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG", ".WEBP", ".BMP"})
# Image files sd-scripts silently skips: worth telling the user about.
_SKIPPED_IMAGE_EXTENSIONS = frozenset({".gif", ".tif", ".tiff", ".avif", ".jxl", ".heic", ".heif", ".jfif", ".psd"})

Progress = Callable[[int], None]
Measure = Callable[[str], "int | None"]
Listing = tuple[list[str], set[str], list[str]]
# O_NONBLOCK: a FIFO among the files opens at once (and reads empty) instead of blocking the scan.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


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
    # When captions are missing but e.g. `img.txt` sits beside `img.png`: the extension those files use.
    other_caption_extension: str | None = None
    caption_tokens: list[int | None] = field(default_factory=list)  # per image, when scanned with `measure`
    rotated: list[str] = field(default_factory=list)  # JPEGs whose EXIF orientation is not upright
    used_captions: set[str] = field(default_factory=set, repr=False)

    @property
    def image_count(self) -> int:
        return len(self.images) + len(self.unreadable)


def list_folder(subset: Subset) -> Listing | None:
    """(image names sorted as sd-scripts sorts paths, all file names, skipped image-like names); None if no folder."""
    try:
        with os.scandir(subset.image_dir) as entries:
            names = {e.name for e in entries if _listed(e)}
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # e.g. no permission: sd-scripts would fail the same way
        raise ConfigError(
            [
                Problem(
                    f"cannot read the image folder: {exc.strerror or exc}",
                    file=subset.image_dir,
                    fix="make it readable by the user who trains",
                )
            ]
        ) from None
    images, skipped = [], []
    for name in names:
        dot = name.rfind(".")
        if dot <= 0:
            continue  # no extension, or a hidden file (glob("*") skips those)
        ext = name[dot:]
        if ext in IMAGE_EXTENSIONS:
            images.append(name)
        elif ext.lower() in IMAGE_EXTENSIONS or ext.lower() in _SKIPPED_IMAGE_EXTENSIONS:
            skipped.append(name)
    images.sort()
    skipped.sort()
    return images, names, skipped


def _listed(entry: os.DirEntry) -> bool:
    """What sd-scripts' glob lists as a file: everything but folders, so also dangling or looping symlinks and
    FIFOs, which the scan then reports as unreadable instead of leaving them for sd-scripts to fail on."""
    try:
        return not entry.is_dir()
    except OSError:  # a symlink loop
        return True


def scan_folder(
    subset: Subset,
    listing: Listing | None = None,
    progress: Progress | None = None,
    report_every: int = 256,
    measure: Measure | None = None,
) -> FolderScan:
    """Read sizes and captions of every image in the subset's folder. Never raises for a bad file.

    `measure(caption)` (e.g. a token counter) is stored per image in `caption_tokens`.
    """
    if listing is None:
        listing = list_folder(subset)
    if listing is None:
        return FolderScan(subset=subset, exists=False)
    part = scan_images(subset, listing, listing[0], progress, report_every, measure)
    return finish_scan(subset, listing, [part])


def scan_images(
    subset: Subset,
    listing: Listing,
    todo: list[str],
    progress: Progress | None = None,
    report_every: int = 256,
    measure: Measure | None = None,
) -> FolderScan:
    """Scan the images `todo` (names from `listing`) of one folder: a part that `finish_scan` completes."""
    scan = FolderScan(subset=subset)
    names = listing[1]
    prefix = os.path.join(subset.image_dir, "")
    ext = subset.caption_extension
    used_captions = scan.used_captions
    pending = 0
    for name in todo:
        path = prefix + name
        try:
            width, height, orientation = image_header(path)
        except ImageHeaderError as exc:
            scan.unreadable.append((name, str(exc)))
        except OSError as exc:
            scan.unreadable.append((name, exc.strerror or str(exc)))
        else:
            scan.images.append((name, width, height))
            if orientation != 1:
                scan.rotated.append(name)
            cap_name = name[: name.rfind(".")] + ext
            if cap_name in names:  # the common case, inlined: this loop runs once per image
                used_captions.add(cap_name)
                scan.captions_found += 1
                text = _read_caption(scan, prefix + cap_name, cap_name)
                if text is not None and (subset.caption_prefix or subset.caption_suffix):
                    text = _decorate(text, subset)
            else:
                text = _caption_for(scan, prefix, name, ext, names, used_captions)
            scan.captions.append(text)
            if measure is not None:
                scan.caption_tokens.append(measure(text) if text else None)
        pending += 1
        if progress is not None and pending >= report_every:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    return scan


def finish_scan(subset: Subset, listing: Listing, parts: list[FolderScan]) -> FolderScan:
    """Join the parts of one folder's scan (in image order) and add the folder-wide findings."""
    scan = parts[0]
    for part in parts[1:]:
        for name in (
            "images",
            "captions",
            "caption_tokens",
            "rotated",
            "missing_captions",
            "empty_captions",
            "blank_captions",
            "not_utf8_captions",
            "unreadable",
            "unreadable_captions",
        ):
            getattr(scan, name).extend(getattr(part, name))
        scan.captions_found += part.captions_found
        scan.used_captions |= part.used_captions
    images, names, skipped = listing
    ext = subset.caption_extension
    scan.unsupported = skipped
    if scan.missing_captions:
        scan.other_caption_extension = _likely_caption_extension(scan.missing_captions, names, ext)
    if ext:
        stems = {n[: n.rfind(".")] for n in images}
        for name in sorted(names):
            if name.endswith(ext) and name not in scan.used_captions and name[: -len(ext)] not in stems:
                scan.orphan_captions.append(name)
    return scan


def _likely_caption_extension(missing: list[str], names: set[str], configured: str) -> str | None:
    for other in (".txt", ".caption", ".tags", ".cap"):
        if other != configured and sum(os.path.splitext(n)[0] + other in names for n in missing[:50]) >= 1:
            return other
    return None


def _caption_for(scan: FolderScan, prefix: str, name: str, ext: str, names: set[str], used: set[str]) -> str | None:
    subset = scan.subset
    stem = name[: name.rfind(".")]  # images always carry an extension, and hidden files are skipped
    cap_name = stem + ext
    if cap_name in names:
        used.add(cap_name)
        return _caption_text(scan, prefix + cap_name, cap_name)
    # sd-scripts' second candidate, for face-crop names: the whole path (folders included) split on "_"
    # with the last four parts dropped.
    base = prefix + stem
    if base.count("_") >= 4:
        cap_path = "_".join(base.split("_")[:-4]) + ext
        if os.path.isfile(cap_path):
            used.add(os.path.basename(cap_path))
            return _caption_text(scan, cap_path, os.path.basename(cap_path))
    scan.missing_captions.append(name)
    # sd-scripts falls back to the class tokens (folder mode: the folder name after N_), else "".
    return _decorate(subset.class_tokens, subset) if subset.class_tokens else None


def _caption_text(scan: FolderScan, cap_path: str, cap_name: str) -> str | None:
    scan.captions_found += 1
    text = _read_caption(scan, cap_path, cap_name)
    return None if text is None else _decorate(text, scan.subset)


def _read_caption(scan: FolderScan, cap_path: str, cap_name: str) -> str | None:
    try:
        fd = os.open(cap_path, _OPEN_FLAGS)
        try:
            raw = os.read(fd, 65536)
            if len(raw) == 65536:
                raw += _read_rest(fd)
        finally:
            os.close(fd)
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
    if not scan.subset.enable_wildcard and "\n" not in text and "\r" not in text:
        caption = text.strip()  # one line: the common case
        if not caption:
            scan.blank_captions.append(cap_name)
        return caption
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


def _read_rest(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


def _decorate(caption: str, subset: Subset) -> str:
    if subset.caption_prefix:
        caption = subset.caption_prefix + " " + caption
    if subset.caption_suffix:
        caption = caption + " " + subset.caption_suffix
    return caption
