"""Write the report: one self-contained report.html (every image embedded as a data: URI, no script or style
from elsewhere, opens offline) and the same figures as PNG files beside it."""

from __future__ import annotations

import base64
import json
import math
from html import escape
from pathlib import Path
from typing import Any

from loratrain.atomic import write_text
from loratrain.report import figures
from loratrain.report.build import Report

HTML_NAME = "report.html"
PNG_NAMES = {"loss": "loss.png", "lr": "learning_rate.png", "norms": "update_norms.png", "samples": "samples.png"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1800px}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;font-size:13px}
th{background:#f4f4f4}.bad{background:#fde2e2}.ok{color:#1a7f37}.flag{color:#b42318;font-weight:600}
.why{color:#666;font-style:italic}.grid td{text-align:center}.grid td.prompt{text-align:left;max-width:22em}
.missing{background:#f8f8f8;color:#aaa}img.broken{outline:3px solid red}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;word-break:break-all;font-size:12px}
.num{text-align:right;font-variant-numeric:tabular-nums}
"""

# Marks any image the browser could not decode, and counts the loaded ones on <body data-images="ok/total">.
_SCRIPT = """
window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++){
var good=im[i].complete&&im[i].naturalWidth>0;im[i].setAttribute('data-natural-width',im[i].naturalWidth);
if(good){ok++}else{im[i].className+=' broken';im[i].title='this image did not load'}}
document.body.setAttribute('data-images',ok+'/'+im.length);});
"""


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _figure(data: bytes | None, alt: str, why: str) -> str:
    if data is None:
        return f'<p class="why">{escape(why)}</p>'
    return f'<img src="{_uri(data, "image/png")}" alt="{escape(alt)}">'


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _launches_text(launches: list[dict]) -> str | None:
    """A resumed run's launches in one line: `2: steps 1-4, resumed to 6`; None for a run of one launch."""
    if len(launches) < 2:
        return None
    ends = [str(x.get("cumulative_steps") or "?") for x in launches]
    return f"{len(launches)}: steps 1-{ends[0]}" + "".join(f", resumed to {e}" for e in ends[1:])


def _effective_rows(e: dict | None) -> list[tuple[str, Any]]:
    """What sd-scripts did with the settings (the effective view's facts)."""
    if not e:
        return []
    processes = e["processes"]["total"]
    size = e["resolution"]
    return [
        (
            "optimizer",
            f"{e['optimizer_type']} ({e['optimizer_class']})" if e["optimizer_class"] else e["optimizer_type"],
        ),
        ("precision", e["precision"]["mixed"]),
        (
            "batch",
            f"{e['train_batch_size']} x {e['gradient_accumulation_steps']} accumulation x "
            f"{processes if processes is not None else '?'} process(es)",
        ),
        ("resolution", f"{size[0]}x{size[1]}" if size else None),
    ]


def _facts_html(report: Report) -> str:
    f = report.facts()
    rows = [
        ("status", f["status"]),
        ("exit code", f["exit_code"]),
        ("interrupted by", f["interrupted_by"]),
        ("cause", f["cause"]),
        ("launches", _launches_text(f["launches"])),
        ("started", f["launches"][0]["started"] if len(f["launches"]) > 1 else f["started"]),
        ("finished", f["finished"]),
        ("duration", f"{f['duration_s']:.0f} s" if isinstance(f["duration_s"], (int, float)) else None),
        ("config file", f["config_file"]),
        ("output_dir", f["output_dir"]),
        ("record", f["record"]),
        ("log", f["log"]),
    ]
    for name, value in (f["versions"] or {}).items():
        rows.append((f"version: {name}", value))
    for name, value in (f["sd_scripts"] or {}).items():
        rows.append((f"sd-scripts {name}", value))
    if f["gpus"]:
        rows.append(("GPUs", ", ".join(str(g.get("name")) for g in f["gpus"])))
    rows += _effective_rows(f["effective"])
    body = "".join(
        f"<tr><th>{escape(k)}</th><td{' class=flag' if k == 'cause' else ''}>{escape(str(v))}</td></tr>"
        for k, v in rows
        if v not in (None, "")
    )
    out = f"<table>{body}</table>"
    if f["command"]:
        out += f"<h3>Command</h3><pre>{escape(f['command'])}</pre>"
    if f["config"]:
        out += f"<h3>Config</h3><pre>{escape(json.dumps(f['config'], indent=2, ensure_ascii=False))}</pre>"
    return out


def _saves_html(report: Report) -> str:
    if not report.saves:
        return f'<p class="why">no saved .safetensors adapter files of this run in {escape(str(report.run.output_dir))}</p>'
    from loratrain.report.health import block_order

    blocks = sorted({b for h in report.saves for b in h.block_norms}, key=block_order)
    head = "".join(f"<th>{escape(b)}</th>" for b in blocks)
    rows = []
    for h in report.saves:
        flags = "; ".join(h.flags)
        detail = ""
        if h.nonfinite:
            detail += "<br>NaN/inf in: " + escape(", ".join(h.nonfinite[:8])) + (" …" if len(h.nonfinite) > 8 else "")
        if h.untrained:
            detail += (
                "<br>never trained: " + escape(", ".join(h.untrained[:8])) + (" …" if len(h.untrained) > 8 else "")
            )
        cells = "".join(
            f'<td class="num">{_num(h.block_norms.get(b), 3)}'
            + (f"<br><small>×{h.block_growth[b]:.2f}</small>" if b in h.block_growth else "")
            + "</td>"
            for b in blocks
        )
        status = f'<span class="flag">{escape(flags)}</span>{detail}' if flags else '<span class="ok">ok</span>'
        rows.append(
            f'<tr class="{"bad" if flags else "good"}" data-file="{escape(h.path.name)}" data-ok="{str(h.ok).lower()}">'
            f"<td>{escape(h.path.name)}</td><td class=num>{_num(h.step)}</td><td class=num>{_num(h.epoch)}</td>"
            f"<td class=num>{_size(h.size_bytes)}</td><td class=num>{h.modules}</td><td>{status}</td>"
            f"<td class=num>{_num(h.total_norm, 4)}</td><td class=num>{'×%.2f' % h.growth if h.growth else '–'}</td>"
            f"{cells}</tr>"
        )
    return (
        '<table id="saves"><tr><th>file</th><th>step</th><th>epoch</th><th>size</th><th>modules</th>'
        f"<th>health</th><th>‖ΔW‖</th><th>growth</th>{head}</tr>{''.join(rows)}</table>"
        "<p class=why>‖ΔW‖: Frobenius norm of the weight update; per block: U-Net down/mid/up blocks and text "
        "encoders; ×: growth over the previous save.</p>"
    )


def _grid_html(report: Report, thumbs: dict) -> str:
    g = report.grid
    if not g.cells:
        return f'<p class="why">{escape(g.reason or "no samples")}</p>'
    head = "".join(f'<th data-column="{escape(g.label(c))}">{escape(g.label(c))}</th>' for c in g.columns)
    rows = []
    for index in g.rows:
        text = g.prompts.get(index, "")
        cells = []
        for col in g.columns:
            s = g.cells.get((index, col))
            attrs = f'data-prompt="{index}" data-column="{escape(g.label(col))}"'
            if s is None:
                cells.append(f'<td class="missing" {attrs}>no sample</td>')
            elif (index, col) not in thumbs:
                cells.append(f'<td class="missing" {attrs} data-file="{escape(s.path.name)}">unreadable</td>')
            else:
                data, original, size = thumbs[(index, col)]
                title = f"{s.path.name} ({original[0]}×{original[1]})"
                cells.append(
                    f'<td {attrs} data-file="{escape(s.path.name)}"><img src="{_uri(data, "image/jpeg")}" '
                    f'width="{size[0]}" height="{size[1]}" alt="{escape(title)}" title="{escape(title)}"></td>'
                )
        rows.append(
            f'<tr data-prompt="{index}"><td class="prompt"><b>#{index}</b> {escape(text)}</td>{"".join(cells)}</tr>'
        )
    return f'<table class="grid" id="samples"><tr><th>prompt</th>{head}</tr>{"".join(rows)}</table>'


def write(report: Report, folder: Path) -> dict[str, Path]:
    """Write report.html and the PNG figures into `folder` (created). Returns name -> path of what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    pngs = {
        "loss": figures.loss_figure(report),
        "lr": figures.lr_figure(report),
        "norms": figures.norms_figure(report),
    }
    thumbs = report.thumbs  # made on other threads while the figures above were drawn
    pngs["samples"] = figures.grid_figure(report, thumbs)
    written: dict[str, Path] = {}
    for key, data in pngs.items():
        target = folder / PNG_NAMES[key]
        if data is None:
            target.unlink(missing_ok=True)  # a figure from an earlier report that has no data now
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        written[key] = target
    c = report.curves
    curves_why = c.reason or "no loss values were logged"
    run = report.run
    title = f"loratrain report: {run.output_name or run.output_dir.name}"
    banner = "".join(f'<p class="why">{escape(n)}</p>' for n in report.notes)
    bad = [h for h in report.saves if not h.ok]
    summary = (
        f"{len(report.saves)} saves, {len(bad)} flagged; {len(report.grid.cells)} samples; "
        f"last logged step {c.last_step if c.last_step is not None else '–'}"
    )
    resumes = f"<p>resumed at step {', '.join(map(str, c.resumes))}</p>" if c.resumes else ""
    folders = "".join(f"<li>{escape(str(f))}</li>" for f in c.folders)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head>
<body data-images="pending">
<h1>{escape(title)}</h1>
<p>{escape(summary)}. Built {report.built:%Y-%m-%d %H:%M:%S}.</p>{banner}
<h2 id="curves">Loss and learning rate</h2>
<div id="curves-body">{_figure(pngs["loss"], "loss per step", curves_why)}
{_figure(pngs["lr"], "learning rate per parameter group", "" if pngs["loss"] is None else "no learning rate was logged") if (pngs["lr"] or pngs["loss"]) else ""}
{resumes}{f"<p class=why>event folders read:</p><ul>{folders}</ul>" if folders else ""}</div>
<h2 id="saves-title">Saved adapters</h2>
{_saves_html(report)}
{_figure(pngs["norms"], "update norm per block and save", "") if pngs["norms"] else ""}
<h2 id="samples-title">Samples</h2>
{_grid_html(report, thumbs)}
<h2 id="run">Run</h2>
{_facts_html(report)}
<script>{_SCRIPT}</script>
</body></html>
"""
    target = folder / HTML_NAME
    write_text(target, page)
    written["html"] = target
    return written
