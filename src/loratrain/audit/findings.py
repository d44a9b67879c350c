"""What the audit reports: one Finding per file and defect, and the one table of kinds.

Severity "error" is kept for what breaks training or silently corrupts it (sd-scripts crashes on the file,
trains damaged pixels, or reuses a stale cache); everything else is a "warning" (`--strict` makes them errors).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from loratrain.errors import Severity

# kind -> (severity, short title). The one list of kinds: the checks, the summary and docs/audit.md use it.
KINDS: dict[str, tuple[Severity, str]] = {
    # images
    "undecodable": ("error", "cannot be opened as an image"),
    "truncated": ("error", "truncated or corrupt image data"),
    "high_bit_depth": ("error", "16-bit or float image that convert('RGB') clips"),
    "wrong_extension": ("warning", "extension does not match the format"),
    "exif_rotated": ("warning", "EXIF orientation is ignored (trained as stored)"),
    "transparent": ("warning", "transparent pixels train as the hidden colour"),
    "cmyk": ("warning", "CMYK converted without its colour profile"),
    "upscaled": ("warning", "small image upscaled into its bucket"),
    "cropped": ("warning", "aspect ratio no bucket fits: much is cropped"),
    "unsupported_file": ("warning", "image file sd-scripts does not pick up"),
    "folder_missing": ("error", "image folder does not exist"),
    # duplicates
    "duplicate_exact": ("warning", "byte-identical image"),
    "duplicate_near": ("warning", "same picture re-encoded or resized"),
    "same_stem": ("warning", "two images share one caption and one cache"),
    # captions
    "caption_missing": ("warning", "no caption file"),
    "caption_empty": ("error", "empty caption file (sd-scripts stops)"),
    "caption_blank": ("warning", "caption's first line is blank"),
    "caption_not_utf8": ("error", "caption is not UTF-8 (sd-scripts stops)"),
    "caption_unreadable": ("error", "caption cannot be read"),
    "caption_bom": ("warning", "caption starts with a byte-order mark"),
    "caption_too_long": ("warning", "caption over the token limit (cut)"),
    "caption_duplicate": ("warning", "same caption as another image"),
    "tag_everywhere": ("warning", "tag in nearly every caption"),
    "trigger_missing": ("warning", "caption lacks the trigger"),
    "trigger_shuffled": ("warning", "trigger not kept by keep_tokens while shuffling"),
    # caches
    "latent_cache_old_style": ("warning", "old-style <stem>.npz is reused"),
    "latent_cache_stale": ("error", "latent cache older than its image, reused"),
    "latent_cache_shape": ("error", "latent cache shape does not match the bucket"),
    "latent_cache_size": ("error", "cache file name gives another image size"),
    "latent_cache_ambiguous": ("warning", "several latent caches for one image"),
    "cache_unreadable": ("error", "cache file sd-scripts cannot load"),
    "te_cache_stale": ("error", "text-encoder cache older than its caption, reused"),
    "info_cache_stale": ("error", "cache_info file older than the images or captions"),
}


@dataclass(frozen=True)
class Finding:
    """One defect of one file (or folder). `fix` says what to do; `image` is the training image it concerns (for
    a caption or a cache: the image beside it), shown as a thumbnail; `deletable` marks a cache `--fix-cache`
    removes."""

    file: str
    kind: str
    message: str
    fix: str = ""
    severity: Severity = "warning"
    image: str = ""
    deletable: bool = False

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("deletable")
        return out


def finding(file: str, kind: str, message: str, fix: str = "", image: str = "", deletable: bool = False) -> Finding:
    """A Finding with the severity its kind has in KINDS."""
    return Finding(file, kind, message, fix, KINDS[kind][0], image, deletable)


def counts_by_kind(findings: list[Finding]) -> Counter[str]:
    return Counter(f.kind for f in findings)


def worst_files(findings: list[Finding], n: int = 5) -> list[tuple[str, int, int]]:
    """(file, errors, warnings) of the files with the most findings, errors first."""
    errors: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    for f in findings:
        (errors if f.severity == "error" else warnings)[f.file] += 1
    files = set(errors) | set(warnings)
    ranked = sorted(files, key=lambda name: (-errors[name], -warnings[name], name))
    return [(name, errors[name], warnings[name]) for name in ranked[:n]]
