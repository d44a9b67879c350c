"""The audit page: one self-contained audit.html, a thumbnail of every flagged image beside what is wrong with it.

Built with the report's page machinery (report/html.py: its style, its data: URIs and its load script that marks
any image the browser cannot decode and counts the decoded ones on <body data-images>)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from html import escape
from pathlib import Path

from loratrain.atomic import write_text
from loratrain.audit.build import AuditResult
from loratrain.audit.findings import KINDS, Finding
from loratrain.audit.images import thumbnail
from loratrain.report.html import _SCRIPT, _STYLE, _uri

HTML_NAME = "audit.html"
THUMB = 160
MAX_THUMBS = 2000  # a page of 20,000 flagged images would weigh hundreds of MB: the rest are listed without one
_EXTRA_STYLE = """
.sev-error{color:#b42318;font-weight:600}.sev-warning{color:#9a6700}
td.thumb{width:170px;text-align:center}ul.f{margin:0;padding-left:1.1em}ul.f li{margin:2px 0}
.file{font-family:monospace;font-size:12px;word-break:break-all}
"""


def _finding_li(f: Finding) -> str:
    fix = f' <span class="why">({escape(f.fix)})</span>' if f.fix else ""
    other = "" if f.file == f.image else f'<br><span class="file">{escape(f.file)}</span>'
    return (
        f'<li data-kind="{escape(f.kind)}" data-severity="{f.severity}"><span class="sev-{f.severity}">'
        f"{escape(f.kind)}</span>: {escape(f.message)}{fix}{other}</li>"
    )


def _top_tags(folder: dict) -> str:
    return ", ".join(f"{t['tag']} ({t['count']})" for t in folder.get("top_tags", []))


def write(result: AuditResult, folder: Path, config_file: str = "") -> Path:
    """Write audit.html into `folder` (created) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    by_image: dict[str, list[Finding]] = {}
    loose: list[Finding] = []
    for f in result.findings:
        if f.image:
            by_image.setdefault(f.image, []).append(f)
        else:
            loose.append(f)
    order = sorted(by_image, key=lambda p: (not any(f.severity == "error" for f in by_image[p]), p))
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        thumbs = dict(zip(order, pool.map(lambda p: thumbnail(p, THUMB), order[:MAX_THUMBS])))
    rows = []
    for path in order:
        found = by_image[path]
        thumb = thumbs.get(path)
        if path not in thumbs:
            cell = f'<td class="thumb missing">not shown (over {MAX_THUMBS} flagged images)</td>'
        elif thumb is None:
            cell = '<td class="thumb missing">cannot be decoded</td>'
        else:
            data, (w, h) = thumb
            cell = (
                f'<td class="thumb"><img src="{_uri(data, "image/jpeg")}" width="{w}" height="{h}" '
                f'alt="{escape(os.path.basename(path))}"></td>'
            )
        kinds = " ".join(sorted({f.kind for f in found}))
        bad = any(f.severity == "error" for f in found)
        rows.append(
            f'<tr class="{"bad" if bad else ""}" data-image="{escape(path)}" data-kinds="{escape(kinds)}">{cell}'
            f'<td><div class="file">{escape(path)}</div><ul class="f">{"".join(_finding_li(f) for f in found)}</ul>'
            "</td></tr>"
        )
    counts = result.as_dict()["by_kind"]
    summary_rows = "".join(
        f'<tr data-kind="{escape(c["kind"])}"><td class="sev-{c["severity"]}">{c["severity"]}</td>'
        f'<td>{escape(c["kind"])}</td><td>{escape(c["title"])}</td><td class="num">{c["count"]}</td></tr>'
        for c in counts
    )
    loose_html = "".join(
        f'<tr data-file="{escape(f.file)}" data-kind="{escape(f.kind)}"><td class="file">{escape(f.file)}</td>'
        f"<td><ul class=f>{_finding_li(f)}</ul></td></tr>"
        for f in loose
    )
    tags = "".join(
        f"<tr><td class=file>{escape(d['folder'])}</td><td>{escape(str(d.get('trigger') or '–'))} "
        f"<span class=why>{escape(d.get('trigger_source') or '')}</span></td><td>{d.get('captions', 0)}</td>"
        f"<td>{escape(_top_tags(d))}</td></tr>"
        for d in result.folders
    )
    title = f"loratrain audit: {config_file}" if config_file else "loratrain audit"
    deleted = (
        "<h2>Deleted by --fix-cache</h2><ul>"
        + "".join(f"<li class=file>{escape(p)}</li>" for p in result.deleted)
        + "</ul>"
        if result.deleted
        else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}{_EXTRA_STYLE}</style></head>
<body data-images="pending">
<h1>{escape(title)}</h1>
<p>{result.images} images; {len(result.errors)} errors, {len(result.warnings)} warnings; {len(order)} images flagged.</p>
<h2>By kind</h2>
<table id="kinds"><tr><th>severity</th><th>kind</th><th>what</th><th>count</th></tr>{summary_rows}</table>
{deleted}
<h2>Flagged images</h2>
<table id="flagged"><tr><th>image (as sd-scripts trains it)</th><th>what is wrong</th></tr>{"".join(rows)}</table>
{f'<h2>Folders and files</h2><table id="other">{loose_html}</table>' if loose else ""}
<h2>Captions by folder</h2>
<table id="folders"><tr><th>folder</th><th>trigger</th><th>captions</th><th>top tags</th></tr>{tags}</table>
<p class="why">Kinds: {escape(", ".join(KINDS))}. See docs/audit.md.</p>
<script>{_SCRIPT}</script>
</body></html>
"""
    target = folder / HTML_NAME
    write_text(target, page)
    return target
