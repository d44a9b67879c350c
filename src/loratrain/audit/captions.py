"""Caption checks on top of plan's folder scan (plan/dataset.py reads every caption exactly as sd-scripts does).

The caption text checked is the one sd-scripts trains: first line (every line with enable_wildcard), stripped,
with caption_prefix/caption_suffix. sd-scripts opens captions as plain UTF-8 (library/train_util.py:1957-1959),
so a byte-order mark stays glued to the first tag. Tags are split on caption_separator as process_caption does
(train_util.py:821-895): with shuffle_caption the tags before keep_tokens_separator (or the first keep_tokens
tags) stay in place and the rest are shuffled.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

from loratrain.audit.findings import Finding, finding
from loratrain.plan.dataset import FolderScan

EVERYWHERE = 0.9  # a tag in this share of a folder's captions is learned as part of the concept
MIN_CAPTIONS_FOR_TAGS = 10  # below this a folder's tag shares say nothing
TOP_TAGS = 10
BOM = "\ufeff"


@dataclass
class FolderCaptions:
    """What the audit says about one folder's captions besides findings: the trigger and the top tags."""

    folder: str
    trigger: str | None = None
    trigger_source: str = ""
    captions: int = 0
    top_tags: list[tuple[str, int]] = field(default_factory=list)
    everywhere: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "folder": self.folder,
            "trigger": self.trigger,
            "trigger_source": self.trigger_source,
            "captions": self.captions,
            "top_tags": [{"tag": t, "count": n} for t, n in self.top_tags],
            "everywhere": self.everywhere,
        }


def tags_of(caption: str, separator: str, keep_separator: str = "") -> list[str]:
    if keep_separator:
        caption = caption.replace(keep_separator, separator)
    return [t.strip() for t in caption.split(separator) if t.strip()]


def kept_tags(caption: str, separator: str, keep_tokens: int, keep_separator: str) -> list[str]:
    """The tags process_caption keeps in place while shuffling (train_util.py:869-888)."""
    if keep_separator and keep_separator in caption:
        fixed, flex = caption.split(keep_separator, 1)
        suffix = flex.split(keep_separator, 1)[1] if keep_separator in flex else ""
        return [t.strip() for t in (fixed.split(separator) + suffix.split(separator)) if t.strip()]
    if keep_tokens > 0:
        return [t.strip() for t in caption.strip().split(separator)][:keep_tokens]
    return []


def _mentions(tags: list[str], caption: str, trigger: str) -> bool:
    want = trigger.strip().casefold()
    if any(t.casefold() == want for t in tags):
        return True
    return re.search(r"(?<!\w)" + re.escape(want) + r"(?!\w)", caption.casefold()) is not None


def check_folder(scan: FolderScan, trigger: str | None, limit: int, out: list[Finding]) -> FolderCaptions:
    """Append the caption findings of one subset folder to `out`; return its trigger and tag summary."""
    sub = scan.subset
    folder = sub.image_dir
    join = os.path.join
    info = FolderCaptions(folder=folder)
    by_stem = {os.path.splitext(n)[0]: n for n, _w, _h in scan.images}
    by_stem.update({os.path.splitext(n)[0]: n for n, _why in scan.unreadable})

    def image_for(caption_name: str) -> str:
        image = by_stem.get(os.path.splitext(caption_name)[0])
        return join(folder, image) if image else ""

    missing = set(scan.missing_captions)
    fallback = f"the class tokens {sub.class_tokens!r}" if sub.class_tokens else "an empty caption"
    for name in scan.missing_captions:
        out.append(
            finding(
                join(folder, name),
                "caption_missing",
                f"no {os.path.splitext(name)[0]}{sub.caption_extension}; sd-scripts trains it with {fallback}",
                fix="write a caption file",
                image=join(folder, name),
            )
        )
    for kind, names, message, fix in (
        ("caption_empty", scan.empty_captions, "empty file: sd-scripts stops with 'caption file is empty'",
         "write a caption or delete the file"),
        ("caption_not_utf8", scan.not_utf8_captions, "not UTF-8: sd-scripts stops with a UnicodeDecodeError",
         "re-save it as UTF-8"),
        ("caption_blank", scan.blank_captions, "first line is blank: sd-scripts trains an empty caption",
         "put the caption on the first line"),
    ):  # fmt: skip
        for name in names:
            out.append(finding(join(folder, name), kind, message, fix=fix, image=image_for(name)))
    for name, why in scan.unreadable_captions:
        out.append(finding(join(folder, name), "caption_unreadable", f"cannot be read ({why})", image=image_for(name)))

    texts: list[tuple[str, str]] = []  # (image name, caption) of captions read from a file
    for (name, _w, _h), text in zip(scan.images, scan.captions):
        if not text or name in missing:  # blank ones are reported above
            continue
        texts.append((name, text))
        cap_path = join(folder, os.path.splitext(name)[0] + sub.caption_extension)
        if BOM in text:
            out.append(
                finding(
                    cap_path,
                    "caption_bom",
                    "starts with a UTF-8 byte-order mark: sd-scripts keeps it glued to the first tag "
                    f"({tags_of(text, sub.caption_separator)[0]!r}), so that tag never matches",
                    fix="re-save it as UTF-8 without BOM",
                    image=join(folder, name),
                )
            )
    for (name, _w, _h), tokens in zip(scan.images, scan.caption_tokens):
        if tokens is not None and tokens > limit:
            out.append(
                finding(
                    join(folder, os.path.splitext(name)[0] + sub.caption_extension),
                    "caption_too_long",
                    f"{tokens} CLIP tokens: sd-scripts cuts it at {limit}",
                    fix="shorten it" + (" or set max_token_length = 150 or 225" if limit < 225 else ""),
                    image=join(folder, name),
                )
            )
    if sub.is_reg:  # regularisation images carry no trigger and are meant to be generic
        info.captions = len(texts)
        return info
    _tags_and_trigger(info, texts, trigger, scan, out)
    return info


def _tags_and_trigger(info: FolderCaptions, texts, trigger, scan: FolderScan, out: list[Finding]) -> None:
    sub = scan.subset
    folder = sub.image_dir
    sep, keep_sep = sub.caption_separator, sub.keep_tokens_separator
    tagged = [(name, text, tags_of(text, sep, keep_sep)) for name, text in texts]
    info.captions = len(tagged)
    counts: Counter[str] = Counter()
    firsts: Counter[str] = Counter()
    for _name, _text, tags in tagged:
        counts.update(set(tags))
        if tags:
            firsts[tags[0]] += 1
    info.top_tags = counts.most_common(TOP_TAGS)
    # The trigger: --trigger, else the class tokens when captions use them, else the most common first tag.
    if trigger:
        info.trigger, info.trigger_source = trigger, "--trigger"
    elif sub.class_tokens and any(_mentions(tags, text, sub.class_tokens) for _n, text, tags in tagged):
        info.trigger, info.trigger_source = sub.class_tokens, "class tokens"
    elif firsts:
        tag, n = firsts.most_common(1)[0]
        if n * 2 >= len(tagged):
            info.trigger, info.trigger_source = tag, "most common first tag"
    if len(tagged) >= MIN_CAPTIONS_FOR_TAGS:
        want = (info.trigger or "").strip().casefold()
        for tag, n in info.top_tags:
            if n >= EVERYWHERE * len(tagged) and tag.casefold() != want:
                info.everywhere.append(tag)
                out.append(
                    finding(
                        folder,
                        "tag_everywhere",
                        f"{tag!r} is in {n} of {len(tagged)} captions: the LoRA learns it as part of the concept "
                        "and the tag stops controlling it",
                        fix="drop it from the captions if it belongs to the concept, or vary the images",
                    )
                )
    if info.trigger is None:
        return
    shuffling = sub.shuffle_caption
    for name, text, tags in tagged:
        cap_path = os.path.join(folder, os.path.splitext(name)[0] + sub.caption_extension)
        image = os.path.join(folder, name)
        if not _mentions(tags, text, info.trigger):
            out.append(
                finding(
                    cap_path,
                    "trigger_missing",
                    f"lacks the trigger {info.trigger!r} ({info.trigger_source})",
                    fix=f"add {info.trigger!r} as the first tag" + ("" if shuffling else ""),
                    image=image,
                )
            )
            continue
        if shuffling:
            kept = kept_tags(text, sep, sub.keep_tokens, keep_sep)
            if not _mentions(kept, ", ".join(kept), info.trigger):
                where = (
                    f"keep_tokens = {sub.keep_tokens} keeps {kept!r}"
                    if kept
                    else "nothing is kept (keep_tokens = 0, no keep_tokens_separator)"
                )
                out.append(
                    finding(
                        cap_path,
                        "trigger_shuffled",
                        f"shuffle_caption moves the trigger {info.trigger!r} around: {where}",
                        fix="put the trigger first and set keep_tokens = 1 (or use keep_tokens_separator)",
                        image=image,
                    )
                )


def duplicate_captions(scans: list[FolderScan], out: list[Finding]) -> None:
    """Verbatim duplicate captions across a dataset's training folders (read from files, not fallbacks)."""
    first: dict[str, str] = {}
    for scan in scans:
        sub = scan.subset
        if sub.is_reg:
            continue
        missing = set(scan.missing_captions)
        for (name, _w, _h), text in zip(scan.images, scan.captions):
            if not text or name in missing:
                continue
            cap_path = os.path.join(sub.image_dir, os.path.splitext(name)[0] + sub.caption_extension)
            if text in first and first[text] != cap_path:  # a.png and a.jpg read one a.txt: that is same_stem
                out.append(
                    finding(
                        cap_path,
                        "caption_duplicate",
                        f"word for word the caption of {first[text]}: the two images teach one prompt",
                        fix="describe what differs between the images",
                        image=os.path.join(sub.image_dir, name),
                    )
                )
            else:
                first[text] = cap_path
