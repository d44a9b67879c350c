"""The audit of the datasets a config trains: plan's scan (folders, headers, captions) + the full decode pass +
duplicates, captions and caches. Returns findings and data; printing belongs to commands/audit.py."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loratrain.audit import caches, captions, duplicates, images
from loratrain.audit.decode import decode_all
from loratrain.audit.findings import KINDS, Finding, counts_by_kind, finding, worst_files
from loratrain.errors import ConfigError, Problem
from loratrain.plan.buckets import Bucketer
from loratrain.plan.clip_tokenizer import MAX_TOKENS
from loratrain.plan.dataset import FolderScan, list_folder, scan_folder
from loratrain.plan.dataset_config import plan_datasets

# A bucket that enlarges an image this much (per side) trains a blurred picture; one that keeps less than this
# share of the resized image crops away what the caption describes.
UPSCALE_WARN = 1.5
KEPT_WARN = 0.85
# Transparency below this share of the pixels (a few anti-aliased edge pixels) is not reported.
TRANSPARENT_WARN = 0.001
_ROTATIONS = {
    2: "mirrored",
    3: "upside down",
    4: "flipped vertically",
    5: "mirrored and turned",
    6: "turned 90°",
    7: "mirrored and turned",
    8: "turned 90° the other way",
}

Progress = Callable[[int, int], None]


@dataclass
class AuditResult:
    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # warnings about the config's datasets (from plan)
    folders: list[dict[str, Any]] = field(default_factory=list)
    images: int = 0
    decoded: int = 0  # images decoded this run (the rest came from the audit's memory)
    deleted: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != "error"]

    def as_dict(self) -> dict[str, Any]:
        counts = counts_by_kind(self.findings)
        return {
            "ok": not self.errors,
            "images": self.images,
            "decoded": self.decoded,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "by_kind": [
                {"kind": k, "severity": KINDS[k][0], "title": KINDS[k][1], "count": counts[k]}
                for k in KINDS
                if counts[k]
            ],
            "worst_files": [{"file": f, "errors": e, "warnings": w} for f, e, w in worst_files(self.findings)],
            "folders": self.folders,
            "deleted": self.deleted,
            "findings": [f.as_dict() for f in self.findings],
        }


def run_audit(
    args: dict[str, Any],
    trigger: str | None = None,
    progress: Progress | None = None,
    fix_cache: bool = False,
    remember: bool = True,
    config_file: str = "",
) -> AuditResult:
    """Audit every folder the config trains. Raises ConfigError when there is no dataset to audit."""
    images.require_pillow()
    dplan = plan_datasets(args)
    errors = [p for p in dplan.problems if p.severity == "error"]
    if errors:
        raise ConfigError([p if p.file else dataclasses.replace(p, file=config_file) for p in errors])
    result = AuditResult(problems=[p for p in dplan.problems if p.severity != "error"])
    from loratrain.plan.planner import _caption_measure, _TokenCounter  # plan's one token count of a caption

    counter = _TokenCounter(args.get("tokenizer_cache_dir"))
    limit = args.get("max_token_length") or MAX_TOKENS
    out = result.findings

    scans: list[tuple[Any, FolderScan, Any]] = []  # (dataset, scan, listing)
    for ds in dplan.datasets:
        for sub in ds.subsets:
            listing = list_folder(sub)
            if listing is None:
                out.append(finding(sub.image_dir, "folder_missing", "sd-scripts skips it", fix="check image_dir"))
                continue
            scans.append((ds, scan_folder(sub, listing, measure=_caption_measure(counter, limit, sub)), listing))
    if counter.missing:
        result.problems.append(Problem(f"caption token counts unavailable: {counter.missing}", severity="warning"))

    folders: dict[str, list[str]] = {}
    for _ds, scan, listing in scans:
        folders.setdefault(scan.subset.image_dir, listing[0])
    facts, result.decoded = decode_all(folders, progress, remember)
    result.images = len(facts)

    hashes: dict[str, str] = {}
    near: dict[str, str] = {}
    for folder, names in folders.items():
        for name in names:
            f = facts[os.path.join(folder, name)]
            if "sha" in f and "error" not in f:
                hashes[os.path.join(folder, name)] = f["sha"]
                near[os.path.join(folder, name)] = f["dhash"]

    bucketers: dict[int, Bucketer | None] = {}
    cache_settings = caches.CacheSettings.from_args(args)
    by_dataset: dict[int, list[FolderScan]] = {}
    for ds, scan, listing in scans:
        sub = scan.subset
        key = id(ds)
        if key not in bucketers:
            bucketers[key] = Bucketer(ds.buckets) if ds.buckets is not None and ds.batch_size >= 1 else None
        bucketer = bucketers[key]
        by_dataset.setdefault(key, []).append(scan)
        _image_findings(scan, listing, facts, bucketer, out)
        info = captions.check_folder(scan, trigger, limit, out)
        if bucketer is not None:
            out.extend(
                caches.audit_folder(
                    sub.image_dir,
                    listing[1],
                    scan.images,
                    bucketer.assign,
                    sub.caption_extension,
                    cache_settings,
                    flip_aug=sub.flip_aug,
                    alpha_mask=sub.alpha_mask,
                    cache_info=sub.cache_info,
                )
            )
        result.folders.append(
            {
                "folder": sub.image_dir,
                "where": sub.where,
                "is_reg": sub.is_reg,
                "images": scan.image_count,
                **{k: v for k, v in info.as_dict().items() if k != "folder"},
            }
        )
    for group in by_dataset.values():
        captions.duplicate_captions(group, out)
    _duplicate_findings(hashes, near, out)

    result.findings = _unique(out)
    if fix_cache:
        result.deleted = delete_stale_caches(result.findings)
    from loratrain.audit import stamp

    stamp.save(args, len(result.errors), len(result.warnings))
    return result


def _unique(found: list[Finding]) -> list[Finding]:
    """Findings in a stable order (by file, then the order of KINDS), each once."""
    order = {k: i for i, k in enumerate(KINDS)}
    seen = set()
    out = []
    for f in sorted(found, key=lambda f: (f.file, order[f.kind], f.message)):
        key = (f.file, f.kind, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def delete_stale_caches(found: list[Finding]) -> list[str]:
    """Delete the cache files sd-scripts would wrongly reuse (and only those); return what was deleted."""
    deleted = []
    for path in sorted({f.file for f in found if f.deletable}):
        if not path.endswith((".npz", caches.INFO_CACHE)):  # never an image or a caption, whatever a finding says
            continue
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError([Problem(f"cannot delete the stale cache: {exc.strerror}", file=path)]) from None
        deleted.append(path)
    return deleted


def _image_findings(scan: FolderScan, listing, facts: dict, bucketer: Bucketer | None, out: list[Finding]) -> None:
    sub = scan.subset
    folder = sub.image_dir
    header_sizes = {name: (w, h) for name, w, h in scan.images}
    for name in scan.unsupported:
        out.append(
            finding(
                os.path.join(folder, name),
                "unsupported_file",
                "sd-scripts picks up only .png .jpg .jpeg .webp .bmp (all lower or all upper case): this image is "
                "left out",
                fix="convert it to .png or .jpg",
            )
        )
    for name in listing[0]:
        path = os.path.join(folder, name)
        f = facts.get(path, {})
        if "error" in f:
            kind = f.get("error_kind", "undecodable")
            what = "sd-scripts stops when it loads it" if kind == "truncated" else "sd-scripts cannot load it"
            out.append(finding(path, kind, f"{f['error']}: {what}", fix="re-export or remove the file", image=path))
            continue
        fmt = "JPEG" if f.get("format") == "MPO" else f.get("format")
        promised = images.extension_format(name)
        if promised and fmt and fmt != promised:
            out.append(
                finding(
                    path,
                    "wrong_extension",
                    f"a {fmt} file named {os.path.splitext(name)[1]}: Pillow reads it by its content, but tools that "
                    "trust the extension (converters, viewers, taggers) misread it",
                    fix=f"rename it to .{fmt.lower().replace('jpeg', 'jpg')}",
                    image=path,
                )
            )
        orientation = f.get("orientation", 1)
        if orientation not in (0, 1):
            out.append(
                finding(
                    path,
                    "exif_rotated",
                    f"EXIF orientation {orientation}: viewers show it upright, sd-scripts trains the stored pixels "
                    f"({_ROTATIONS.get(orientation, 'turned')})",
                    fix="rotate the pixels and drop the tag (e.g. `mogrify -auto-orient FILE`)",
                    image=path,
                )
            )
        transparent = f.get("transparent") or 0
        pixels = max(1, f["size"][0] * f["size"][1])
        if transparent / pixels >= TRANSPARENT_WARN and not sub.alpha_mask:
            out.append(
                finding(
                    path,
                    "transparent",
                    f"{transparent} pixels ({transparent / pixels:.1%}) are (partly) transparent ({f.get('mode')}); "
                    "convert('RGB') drops the alpha, so they train as whatever colour is stored under them (often "
                    "black)",
                    fix="flatten it onto a background, or train with alpha_mask",
                    image=path,
                )
            )
        clipped = f.get("clipped")
        if clipped is not None:
            out.append(
                finding(
                    path,
                    "high_bit_depth",
                    f"mode {f.get('mode')}: convert('RGB') clips values above 255 instead of scaling them, "
                    f"{clipped:.0%} of the pixels turn white",
                    fix="save it as 8-bit (e.g. `convert FILE -depth 8 OUT.png`)",
                    image=path,
                )
            )
        if f.get("mode") == "CMYK":
            out.append(
                finding(
                    path,
                    "cmyk",
                    "CMYK: convert('RGB') ignores the colour profile, colours come out shifted",
                    fix="convert it to sRGB with its profile",
                    image=path,
                )
            )
        size = header_sizes.get(name)
        if bucketer is not None and size is not None:
            _bucket_findings(path, size, bucketer, out)
    for group in duplicates.same_stems(listing[0]):
        for name in group[1:]:
            out.append(
                finding(
                    os.path.join(folder, name),
                    "same_stem",
                    f"{group[0]} and {name} share one caption ({os.path.splitext(name)[0]}{sub.caption_extension}) and "
                    "one latent cache",
                    fix="rename one of them",
                    image=os.path.join(folder, name),
                )
            )


def _bucket_findings(path: str, size: tuple[int, int], bucketer: Bucketer, out: list[Finding]) -> None:
    w, h = size
    bw, bh = bucketer.assign(w, h)
    if bw <= 0 or bh <= 0 or bucketer.no_upscale:
        return  # plan reports empty buckets; without upscaling the bucket follows the image
    rw, rh = bucketer.resized_size(w, h)
    factor = rw / w
    if factor >= UPSCALE_WARN:
        out.append(
            finding(
                path,
                "upscaled",
                f"{w}x{h} is enlarged {factor:.1f}x to fill its {bw}x{bh} bucket: it trains blurred",
                fix="use a larger source, or bucket_no_upscale",
                image=path,
            )
        )
    kept = (bw * bh) / max(1, rw * rh)
    if kept < KEPT_WARN:
        out.append(
            finding(
                path,
                "cropped",
                f"aspect {w / h:.2f} fits no bucket: resized to {rw}x{rh}, its {bw}x{bh} bucket crops away "
                f"{1 - kept:.0%} of it",
                fix="crop it to a shape near a bucket's, or widen min/max_bucket_reso",
                image=path,
            )
        )


def _duplicate_findings(hashes: dict[str, str], near: dict[str, str], out: list[Finding]) -> None:
    exact_members = set()
    for group in duplicates.exact_groups(hashes):
        for path in group[1:]:
            exact_members.add(path)
            out.append(
                finding(
                    path,
                    "duplicate_exact",
                    f"byte for byte the same file as {group[0]}: it trains twice as often",
                    fix="delete one copy",
                    image=path,
                )
            )
    for a, b, bits in duplicates.near_pairs({p: h for p, h in near.items() if p not in exact_members}):
        out.append(
            finding(
                b,
                "duplicate_near",
                f"the same picture as {a} (re-encoded or resized; dHash differs in {bits} of 128 bits): it trains "
                "twice as often",
                fix="delete one of them",
                image=b,
            )
        )
