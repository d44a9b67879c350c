"""The `plan` report: dataset, buckets, steps/epochs, saves, samples and prompt checks, before any GPU work.

Input is a dict of sd-scripts arguments (dests; unset flags absent, sd-scripts' defaults apply) and the
number of training processes. Output is a JSON-ready dict plus the problems found; printing belongs to
the command module.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loratrain.effective import Effective
from loratrain.errors import Problem, Severity
from loratrain.plan import steps as steps_mod
from loratrain.plan.buckets import Bucketer
from loratrain.plan.clip_tokenizer import MAX_TOKENS, ClipTokenizer, VocabularyNotFound, load_tokenizer
from loratrain.plan.dataset import FolderScan, finish_scan, list_folder, scan_folder, scan_images
from loratrain.plan.dataset_config import Dataset, Subset, plan_datasets
from loratrain.plan.prompts import FLAG_OF, load_prompt_file
from loratrain.sdscripts import flags

ProgressCallback = Callable[[int, int], None]  # (images done, images in all folders)


@dataclass
class PlanReport:
    data: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "warning"]


def _get(args: dict[str, Any], key: str) -> Any:
    """The value the run will use: the config's, else sd-scripts' own default from the flag table."""
    value = args.get(key)
    if value is not None:
        return value
    spec = flags.get(key)
    return spec.default if spec is not None else None


class _TokenCounter:
    """Loads the CLIP vocabulary once, on first need; remembers why it could not."""

    def __init__(self, cache_dir: str | None):
        self.cache_dir = cache_dir
        self.tokenizer: ClipTokenizer | None = None
        self.missing: str | None = None
        self.tried = False

    def count(self, text: str) -> int | None:
        if not self.tried:
            self.tried = True
            try:
                self.tokenizer = load_tokenizer(self.cache_dir)
            except VocabularyNotFound as exc:
                self.missing = str(exc)
        return None if self.tokenizer is None else self.tokenizer.count(text)


def build_plan(
    run: dict[str, Any] | Effective,
    num_processes: int = 1,
    progress: ProgressCallback | None = None,
    config_file: str = "",
) -> PlanReport:
    """The plan of a run: its effective view (the process count included), or bare sd-scripts arguments and a
    process count."""
    view = run if isinstance(run, Effective) else None
    args = dict(run.args) if isinstance(run, Effective) else run
    if view is not None:
        num_processes = view.processes.total_or_one()
    report = PlanReport()
    problems = report.problems
    counter = _TokenCounter(_get(args, "tokenizer_cache_dir"))
    dplan = plan_datasets(args)
    problems.extend(_with_file(p, config_file) for p in dplan.problems)

    caption_limit = _get(args, "max_token_length") or MAX_TOKENS
    if any(ds.subsets for ds in dplan.datasets):
        counter.count("")  # load the vocabulary now, before any worker process is forked
    scans = _scan_all(dplan.datasets, progress, lambda sub: _caption_measure(counter, caption_limit, sub))
    datasets_out, buckets_out = [], []
    total_batches = 0
    train_items = reg_items = 0
    for di, (ds, ds_scans) in enumerate(zip(dplan.datasets, scans)):
        for scan in ds_scans:
            datasets_out.append(_subset_entry(di, ds, scan, caption_limit, problems))
        result = _bucket_dataset(di, ds, ds_scans, problems, config_file)
        if result is None:
            continue
        entries, n_train, n_reg = result
        buckets_out.extend(entries)
        total_batches += sum(b["batches"] for b in entries)
        train_items += n_train
        reg_items += n_reg

    data: dict[str, Any] = {
        "mode": dplan.mode,
        "unscanned": dplan.unscanned,
        "datasets": datasets_out,
        "buckets": buckets_out,
        "train_items": train_items,
        "reg_items": reg_items,
        "batches_per_epoch": total_batches,
        "num_processes": num_processes,
        "gradient_accumulation_steps": _get(args, "gradient_accumulation_steps"),
    }
    if view is not None:
        data["effective"] = view.facts()
    prompts_out = _prompts(args, num_processes, counter, problems)
    sched = None
    if total_batches > 0:
        sched = steps_mod.schedule(
            total_batches,
            num_processes=num_processes,
            gradient_accumulation_steps=_get(args, "gradient_accumulation_steps"),
            max_train_steps=_get(args, "max_train_steps"),
            max_train_epochs=_get(args, "max_train_epochs"),
            save_every_n_epochs=_get(args, "save_every_n_epochs"),
            save_every_n_steps=_get(args, "save_every_n_steps"),
            save_n_epoch_ratio=_get(args, "save_n_epoch_ratio"),
            save_last_n_epochs=_get(args, "save_last_n_epochs"),
            save_last_n_steps=_get(args, "save_last_n_steps"),
            sample_every_n_steps=_get(args, "sample_every_n_steps"),
            sample_every_n_epochs=_get(args, "sample_every_n_epochs"),
            sample_at_first=bool(_get(args, "sample_at_first")),
            sampling=prompts_out is not None,
        )
    elif not report.errors and not dplan.unscanned:
        problems.append(
            Problem(
                "no training images found: sd-scripts logs 'No data found' and exits 0 without training",
                key="train_data_dir",
                file=config_file,
                fix="train_data_dir must be the parent of the N_name folders",
            )
        )
    data.update(
        {
            "steps_per_epoch": sched.steps_per_epoch if sched else 0,
            "batches_per_process": sched.batches_per_process if sched else 0,
            "epochs": sched.epochs if sched else 0,
            "total_steps": sched.total_steps if sched else 0,
            "steps_from_epochs": sched.steps_from_epochs if sched else False,
            "saves": [e.as_dict() for e in sched.saves] if sched else [],
            "samples": [{k: v for k, v in e.as_dict().items() if k != "kept"} for e in sched.samples] if sched else [],
            "sample_prompts": _get(args, "sample_prompts"),
            "prompts": prompts_out or [],
            "caption_token_limit": caption_limit,
        }
    )
    if counter.missing:
        problems.append(Problem(f"token counts unavailable: {counter.missing}", severity="warning"))
    data["tokenizer"] = counter.tokenizer.source.origin if counter.tokenizer else None
    data["problems"] = [_problem_dict(p) for p in problems]
    report.data = data
    return report


def _placed(p: Problem, ds: Dataset, config_file: str) -> Problem:
    """A bucket problem keyed by a setting name, pointed at the dataset-config key that set it when one did."""
    source = ds.sources.get(p.key)
    if source is None:
        return _with_file(p, config_file)
    file, key, line = source
    return dataclasses.replace(p, key=key, file=file, line=line)


def _with_file(p: Problem, config_file: str) -> Problem:
    if p.file or not config_file:
        return p
    return dataclasses.replace(p, file=config_file)


def _problem_dict(p: Problem) -> dict[str, Any]:
    return p.as_dict()


# LORATRAIN_SCAN_WORKERS=N scans with N forked worker processes (Linux). Off by default: on a 2-core
# machine shared with other work it measured slower than one process (see benchmarks/plan_scan.py).
_CHUNK = 1500
_WORK: list = []  # (subset, listing) per folder, handed to forked workers by inheritance


def _scan_all(
    datasets: list[Dataset], progress: ProgressCallback | None, measure: Callable[[Subset], Callable[[str], int | None]]
) -> list[list[FolderScan]]:
    jobs = [(sub, list_folder(sub)) for ds in datasets for sub in ds.subsets]
    total = sum(len(listing[0]) for _sub, listing in jobs if listing)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    workers = _worker_count(total)
    if workers > 1:
        scans = _scan_parallel(jobs, workers, tick, measure)
    else:
        scans = [
            scan_folder(sub, listing, progress=tick, measure=measure(sub))
            if listing
            else FolderScan(subset=sub, exists=False)
            for sub, listing in jobs
        ]
    out, i = [], 0
    for ds in datasets:
        out.append(scans[i : i + len(ds.subsets)])
        i += len(ds.subsets)
    return out


def _worker_count(total: int) -> int:
    # fork only: workers inherit the folder listings and the loaded tokenizer instead of pickling them.
    wanted = os.environ.get("LORATRAIN_SCAN_WORKERS", "")
    if not (wanted.isdigit() and int(wanted) > 1) or not sys.platform.startswith("linux"):
        return 1
    return max(1, min(int(wanted), total // _CHUNK))


def _scan_parallel(jobs, workers: int, tick, measure) -> list[FolderScan]:
    import multiprocessing

    _WORK[:] = [(sub, listing, measure(sub) if listing else None) for sub, listing in jobs]
    chunks = [
        (j, start) for j, (_sub, listing) in enumerate(jobs) if listing for start in range(0, len(listing[0]), _CHUNK)
    ]
    parts: dict[int, list[tuple[int, FolderScan]]] = {}
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for j, start, part in pool.imap_unordered(_scan_chunk, chunks):
                parts.setdefault(j, []).append((start, part))
                tick(len(part.images) + len(part.unreadable))
    finally:
        _WORK.clear()
    scans = []
    for j, (sub, listing) in enumerate(jobs):
        if not listing:
            scans.append(FolderScan(subset=sub, exists=False))
        elif j not in parts:  # a folder without images
            scans.append(finish_scan(sub, listing, [FolderScan(subset=sub)]))
        else:
            scans.append(finish_scan(sub, listing, [p for _start, p in sorted(parts[j], key=lambda x: x[0])]))
    return scans


def _scan_chunk(task: tuple[int, int]) -> tuple[int, int, FolderScan]:
    j, start = task
    sub, listing, measure = _WORK[j]
    part = scan_images(sub, listing, listing[0][start : start + _CHUNK], measure=measure)
    part.subset = sub
    return j, start, part


def _subset_entry(di: int, ds: Dataset, scan: FolderScan, limit: int, problems: list[Problem]) -> dict[str, Any]:
    sub = scan.subset
    folder = sub.image_dir

    def add(message: str, severity: Severity = "warning", fix: str = "") -> None:
        problems.append(Problem(message, key=sub.where, file=folder, fix=fix, severity=severity))

    entry: dict[str, Any] = {
        "dataset": di,
        "dir": folder,
        "where": sub.where,
        "repeats": sub.num_repeats,
        "is_reg": sub.is_reg,
        "caption_extension": sub.caption_extension,
        "class_tokens": sub.class_tokens,
        "images": scan.image_count,
        "readable_images": len(scan.images),
        "captions": scan.captions_found,
        "missing_captions": len(scan.missing_captions),
        "empty_captions": len(scan.empty_captions),
        "blank_captions": len(scan.blank_captions),
        "not_utf8_captions": len(scan.not_utf8_captions),
        "unreadable": [{"file": n, "error": e} for n, e in scan.unreadable + scan.unreadable_captions],
        "unsupported": scan.unsupported,
        "orphan_captions": len(scan.orphan_captions),
        "long_captions": 0,
        "longest_caption_tokens": None,
        "exif_rotated": len(scan.rotated),
    }
    if not scan.exists:
        add("image folder does not exist; sd-scripts skips it", severity="error", fix="check image_dir")
        return entry
    if sub.num_repeats < 1:
        add(
            f"num_repeats is {sub.num_repeats}: sd-scripts ignores this subset",
            fix="set num_repeats >= 1 (dataset_repeats = 0 on the command line does this to every subset without one)",
        )
    if scan.image_count == 0:
        add(
            "no images (.png .jpg .jpeg .webp .bmp) in this folder; sd-scripts ignores it",
            severity="warning" if sub.is_reg else "error",
        )
    for name, why in scan.unreadable:
        add(f"{name}: unreadable image ({why}); sd-scripts fails on it", severity="error", fix="fix or remove the file")
    for name, why in scan.unreadable_captions:
        add(f"{name}: caption cannot be read ({why})", severity="error")
    if scan.empty_captions:
        add(
            f"{len(scan.empty_captions)} empty caption file(s), e.g. {scan.empty_captions[0]}: sd-scripts stops "
            "with 'caption file is empty'",
            severity="error",
            fix="write a caption or delete the file",
        )
    if scan.not_utf8_captions:
        add(
            f"{len(scan.not_utf8_captions)} caption file(s) not UTF-8, e.g. {scan.not_utf8_captions[0]}: "
            "sd-scripts stops with a UnicodeDecodeError",
            severity="error",
            fix="re-save them as UTF-8",
        )
    if scan.missing_captions:
        fallback = f"the class tokens {sub.class_tokens!r}" if sub.class_tokens else "an empty caption"
        fix = ""
        if scan.other_caption_extension:
            fix = f'captions here end in {scan.other_caption_extension}: set caption_extension = "{scan.other_caption_extension}"'
        add(
            f"{len(scan.missing_captions)} of {len(scan.images)} images have no {sub.caption_extension} caption, "
            f"e.g. {scan.missing_captions[0]}; sd-scripts uses {fallback}",
            fix=fix,
        )
    if scan.blank_captions:
        add(
            f"{len(scan.blank_captions)} caption file(s) whose first line is blank, e.g. {scan.blank_captions[0]}: "
            "sd-scripts trains them with an empty caption"
        )
    if scan.rotated:
        add(
            f"{len(scan.rotated)} JPEG(s) carry an EXIF rotation, e.g. {scan.rotated[0]}: viewers show them turned, "
            "sd-scripts trains them as stored (sideways or flipped)",
            fix="rotate the pixels and drop the tag, e.g. `exiftran -ai *.jpg` or `mogrify -auto-orient *.jpg`",
        )
    if scan.unsupported:
        add(
            f"{len(scan.unsupported)} image file(s) sd-scripts does not pick up (format or extension case), "
            f"e.g. {scan.unsupported[0]}",
            fix="convert them to .png/.jpg/.webp with a lower- or upper-case extension",
        )
    _caption_lengths(scan, entry, limit, add)
    return entry


def _caption_measure(counter: _TokenCounter, limit: int, sub: Subset) -> Callable[[str], int | None]:
    """Token count of a caption (its longest line with enable_wildcard); None for ones that cannot be long."""
    wildcard = sub.enable_wildcard

    def measure(caption: str) -> int | None:
        # Every CLIP token covers at least one UTF-8 byte of the cleaned text: short captions cannot be long.
        # (surrogateescape: a class token from a folder name that is not UTF-8 keeps its raw bytes)
        if len(caption) <= limit and len(caption.encode("utf-8", "surrogateescape")) <= limit:
            return None
        if wildcard:
            counts = [counter.count(line) for line in caption.split("\n")]
            return None if None in counts else max(c for c in counts if c is not None)
        return counter.count(caption)

    return measure


def _caption_lengths(scan: FolderScan, entry: dict[str, Any], limit: int, add) -> None:
    longest, longest_name, over = 0, "", 0
    for (name, _w, _h), tokens in zip(scan.images, scan.caption_tokens):
        if tokens is None:
            continue
        if tokens > limit:
            over += 1
        if tokens > longest:
            longest, longest_name = tokens, name
    entry["long_captions"] = over
    entry["longest_caption_tokens"] = longest or None
    if over:
        add(
            f"{over} caption(s) longer than {limit} tokens (longest: {longest_name}'s caption, {longest} tokens); "
            f"sd-scripts cuts them at {limit}",
            fix="shorten them" + (" or set max_token_length = 150 or 225" if limit < 225 else ""),
        )


def _bucket_dataset(di: int, ds: Dataset, scans: list[FolderScan], problems: list[Problem], config_file: str):
    where = ds.where or f"datasets[{di}]"
    if ds.buckets is None:
        problems.append(
            Problem(
                "no resolution set: sd-scripts' DreamBooth dataset asserts that a resolution is given",
                key="resolution",
                file=config_file,
                fix='set resolution = "1024,1024"',
            )
        )
        return None
    if ds.batch_size < 1:
        problems.append(
            Problem(f"batch size {ds.batch_size} is not positive", key="train_batch_size", file=config_file)
        )
        return None
    settings = ds.buckets
    bucketer = Bucketer(settings)
    problems.extend(_placed(p, ds, config_file) for p in bucketer.problems)
    if settings.enable_bucket and settings.bucket_reso_steps % 32:
        problems.append(
            _placed(
                Problem(
                    f"bucket_reso_steps {settings.bucket_reso_steps} is not a multiple of 32: "
                    "sdxl_train_network.py stops with an AssertionError",
                    key="bucket_reso_steps",
                    fix="use 32 or 64",
                ),
                ds,
                config_file,
            )
        )
    if ds.validation_split:
        problems.append(
            Problem(
                f"validation_split = {ds.validation_split}: sd-scripts holds out a random part of the "
                "images; the counts here include them",
                key=where,
                file=config_file,
                severity="warning",
            )
        )
    usable = [s for s in scans if s.exists and s.subset.num_repeats >= 1 and s.images]
    train = [s for s in usable if not s.subset.is_reg]
    reg = [s for s in usable if s.subset.is_reg]
    n_train = sum(len(s.images) * s.subset.num_repeats for s in train)
    images: Counter[Any] = Counter()
    items: Counter[Any] = Counter()
    tiny = []
    for scan in train:
        for name, w, h in scan.images:
            bucket = bucketer.assign(w, h)
            images[bucket] += 1
            items[bucket] += scan.subset.num_repeats
            if 0 in bucket:
                tiny.append(name)
    reg_sizes = [(w, h) for s in reg for _n, w, h in s.images]
    reg_repeats = [s.subset.num_repeats for s in reg for _ in s.images]
    effective = steps_mod.balance_regularisation(n_train, reg_repeats)
    n_reg = 0
    for (w, h), reps in zip(reg_sizes, effective):
        if reps:
            bucket = bucketer.assign(w, h)
            images[bucket] += 1
            items[bucket] += reps
            n_reg += reps
    if reg_repeats and n_train and sum(reg_repeats) > n_train:
        problems.append(
            Problem(
                f"regularisation images with repeats ({sum(reg_repeats)}) outnumber training items "
                f"({n_train}); sd-scripts leaves some unused",
                key="reg_data_dir",
                file=config_file,
                severity="warning",
            )
        )
    if tiny:
        problems.append(
            Problem(
                f"{len(tiny)} image(s) smaller than bucket_reso_steps ({settings.bucket_reso_steps}) "
                f"land in an empty bucket, e.g. {tiny[0]}",
                key=where,
                file=config_file,
                fix="remove or upscale them",
            )
        )
    entries = []
    for w, h in sorted(items):
        n_items = items[(w, h)]
        entries.append(
            {
                "dataset": di,
                "width": w,
                "height": h,
                "images": images[(w, h)],
                "items": n_items,
                "batches": steps_mod.ceil_div(n_items, ds.batch_size),
                "batch_size": ds.batch_size,
                "partial": n_items % ds.batch_size != 0,
                "short": n_items < ds.batch_size,
            }
        )
    short = [e for e in entries if e["short"]]
    if short:
        sizes = ", ".join(f"{e['width']}x{e['height']} ({e['items']})" for e in short[:6])
        more = f" and {len(short) - 6} more" if len(short) > 6 else ""
        problems.append(
            Problem(
                f"{len(short)} bucket(s) hold fewer items than the batch size {ds.batch_size}: {sizes}{more}; "
                "each trains as a partial batch every epoch",
                key=where,
                file=config_file,
                severity="warning",
                fix="add images of those shapes, crop them to a common shape, or lower the batch size",
            )
        )
    return entries, n_train, n_reg


def _prompts(
    args: dict[str, Any], num_processes: int, counter: _TokenCounter, problems: list[Problem]
) -> list[dict[str, Any]] | None:
    path = _get(args, "sample_prompts")
    if not path:
        return None
    checked = check_prompt_file(
        str(path),
        num_processes=num_processes,
        default_sampler=_get(args, "sample_sampler"),
        counter=counter,
        report_missing_vocabulary=False,
    )
    problems.extend(checked.problems)
    return checked.data["prompts"]


def check_prompt_file(
    path: str,
    num_processes: int = 1,
    default_sampler: str | None = None,
    counter: _TokenCounter | None = None,
    tokenizer_cache_dir: str | None = None,
    report_missing_vocabulary: bool = True,
) -> PlanReport:
    """Parse a prompt file, count tokens, and flag prompts sd-scripts would cut or idle GPUs over."""
    report = PlanReport()
    counter = counter or _TokenCounter(tokenizer_cache_dir)
    parsed = load_prompt_file(path)
    report.problems.extend(parsed.problems)
    out = []
    for p in parsed.prompts:
        tokens = counter.count(p.prompt)
        negative = p.negative_prompt
        neg_tokens = counter.count(negative) if negative is not None else None
        where = f"prompt {p.index + 1}"
        for label, count in (("prompt", tokens), ("negative prompt (--n)", neg_tokens)):
            if count is not None and count > MAX_TOKENS:
                cut = "; past 225 it is cut" if count > 225 else ""
                report.problems.append(
                    Problem(
                        f"{where}: the {label} is {count} CLIP tokens, over the {MAX_TOKENS} one text-encoder pass "
                        f"takes ({count + 2} with start/end, limit 77): sd-scripts' sampler encodes the rest as a "
                        f"separate chunk and SDXL's pooled embedding sees only the first {MAX_TOKENS}{cut}",
                        key="sample_prompts",
                        file=path,
                        line=p.line,
                        fix=f"shorten it by {count - MAX_TOKENS} tokens",
                    )
                )
        out.append(
            {
                "index": p.index,
                "line": p.line,
                "text": p.prompt,
                "tokens": tokens,
                "negative_tokens": neg_tokens,
                "options": p.options,
                "flags": {FLAG_OF[k]: v for k, v in p.options.items() if k in FLAG_OF},
                "effective": p.effective(default_sampler),
            }
        )
    if num_processes > 1 and out and len(out) % num_processes:
        report.problems.append(
            Problem(
                f"{len(out)} prompts over {num_processes} processes: the last round leaves "
                f"{num_processes - len(out) % num_processes} GPU(s) idle",
                key="sample_prompts",
                file=path,
                severity="warning",
                fix=f"use a multiple of {num_processes} prompts",
            )
        )
    if counter.missing and report_missing_vocabulary:
        report.problems.append(Problem(f"token counts unavailable: {counter.missing}", severity="warning"))
    report.data = {
        "file": path,
        "prompts": out,
        "num_processes": num_processes,
        "tokenizer": counter.tokenizer.source.origin if counter.tokenizer else None,
        "problems": [_problem_dict(p) for p in report.problems],
    }
    return report
