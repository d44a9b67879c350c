"""Write the comparison: one self-contained compare.html (images embedded, the report's style and image check)
and its loss figure as compare_loss.png beside it."""

from __future__ import annotations

from html import escape
from pathlib import Path

from loratrain.atomic import write_text
from loratrain.report import curves as curves_mod
from loratrain.report.compare import Comparison
from loratrain.report.figures import _png
from loratrain.report.html import _SCRIPT, _STYLE, _num, _uri

HTML_NAME = "compare.html"
LOSS_PNG = "compare_loss.png"
_EXTRA_STYLE = ".mismatch{background:#fff4ce}.rank1{background:#e6f4ea}td.run{text-align:left;white-space:nowrap}"


def loss_figure(cmp: Comparison) -> bytes | None:
    """Every run on one plot: training loss (smoothed loss/current, else loss/average) solid, step validation
    loss dashed with markers, in the run's colour; epoch validation losses in a second panel by epoch."""
    step_runs = [c for c in cmp.ranking if any(c.report.curves.series.get(t) for t in ("loss/current", "loss/average"))]
    epoch_runs = [c for c in cmp.ranking if c.report.curves.series.get("loss/validation/epoch_average")]
    if not step_runs and not epoch_runs:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6.5 if epoch_runs else 4))
    FigureCanvasAgg(fig)
    if epoch_runs:
        ax, ax2 = fig.subplots(2, 1, gridspec_kw={"height_ratios": [2, 1]})
    else:
        ax = fig.subplots()
    colours = {c.name: f"C{i % 10}" for i, c in enumerate(cmp.ranking)}
    for c in step_runs:
        series = c.report.curves.series
        tag = "loss/current" if series.get("loss/current") else "loss/average"
        s = series[tag]
        values = s.values
        if tag == "loss/current":
            values = curves_mod.smooth(s.values, curves_mod.smoothing_weight(len(s.values)))
        ax.plot(s.steps, values, color=colours[c.name], lw=1.3, label=f"{c.name} (train)")
        val = series.get("loss/validation/step_average")
        if val is not None and val.steps:
            ax.plot(
                val.steps, val.values, color=colours[c.name], ls="--", marker="o", ms=3, lw=1, label=f"{c.name} (val)"
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if step_runs:
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    if epoch_runs:
        for c in epoch_runs:
            s = c.report.curves.series["loss/validation/epoch_average"]
            ax2.plot(s.steps, s.values, color=colours[c.name], marker="o", ms=4, lw=1.2, label=c.name)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("validation loss (epoch)")
        ax2.grid(alpha=0.3)
        ax2.legend(loc="upper right", fontsize=7, ncol=2)
    fig.tight_layout()
    return _png(fig)


def _ranking_html(cmp: Comparison) -> str:
    keys = sorted({k for c in cmp.runs for k in c.values})
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    label = escape(cmp.metric or "no metric")
    rows = []
    for place, c in enumerate(cmp.ranking, start=1):
        value = c.last(cmp.metric) if cmp.metric else None
        bad = [h.path.name for h in c.report.saves if not h.ok]
        health = (
            f'<span class="flag">{len(bad)} of {len(c.report.saves)} flagged: {escape(", ".join(bad))}</span>'
            if bad
            else f'<span class="ok">{len(c.report.saves)} ok</span>'
        )
        cells = "".join(f"<td>{escape(str(c.values.get(k, '–')))}</td>" for k in keys)
        rows.append(
            f'<tr class="{"rank1" if place == 1 and value is not None else ""}" data-run="{escape(c.name)}" '
            f'data-place="{place}"><td class=num>{place}</td><td class="run">{escape(c.name)}</td>{cells}'
            f"<td class=num>{_num(value, 5)}</td><td class=num>{_num(c.steps)}</td>"
            f"<td>{escape(c.report.run.status)}</td><td>{health}</td></tr>"
        )
    return (
        f'<table id="ranking"><tr><th>#</th><th>run</th>{head}<th>{label}</th><th>steps</th><th>status</th>'
        f"<th>saves</th></tr>{''.join(rows)}</table>"
    )


def _grid_html(cmp: Comparison) -> str:
    rows = cmp.rows()
    if not rows or not cmp.prompts:
        return '<p class="why">no run has sample images to compare</p>'
    head = ""
    for index in cmp.prompts:
        text = cmp.prompt_texts.get(index, "")
        klass = ' class="mismatch"' if index in cmp.mismatched else ""
        title = f' title="{escape(cmp.mismatched[index])}"' if index in cmp.mismatched else ""
        flag = " ⚠ not comparable" if index in cmp.mismatched else ""
        head += f'<th data-prompt="{index}"{klass}{title}><b>#{index}</b> {escape(text)}{flag}</th>'
    body = []
    thumbs = {c.name: c.report.thumbs for c in cmp.ranking}
    for c, col in rows:
        label = f"{col[0]} {col[1]}"
        cells = []
        for index in cmp.prompts:
            s = c.report.grid.cells.get((index, col))
            klass = "mismatch" if index in cmp.mismatched else ""
            attrs = f'data-run="{escape(c.name)}" data-column="{escape(label)}" data-prompt="{index}"'
            if s is None:
                cells.append(f'<td class="missing {klass}" {attrs}>no sample</td>')
                continue
            thumb = thumbs[c.name].get((index, col))
            if thumb is None:
                cells.append(f'<td class="missing {klass}" {attrs} data-file="{escape(str(s.path))}">unreadable</td>')
                continue
            data, original, size = thumb
            title = f"{c.name}: {s.path.name} ({original[0]}×{original[1]})"
            cells.append(
                f'<td class="{klass}" {attrs} data-file="{escape(str(s.path))}"><img src="{_uri(data, "image/jpeg")}" '
                f'width="{size[0]}" height="{size[1]}" alt="{escape(title)}" title="{escape(title)}"></td>'
            )
        body.append(f'<tr><td class="run"><b>{escape(c.name)}</b><br>{escape(label)}</td>{"".join(cells)}</tr>')
    return f'<table class="grid" id="samples"><tr><th>run / when</th>{head}</tr>{"".join(body)}</table>'


def write(cmp: Comparison, folder: Path, built: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    png = loss_figure(cmp)
    if png is not None:
        target = folder / LOSS_PNG
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(png)
        tmp.replace(target)
        written["loss"] = target
    notes = "".join(
        f'<p class="{"flag" if "not compare" in n or "flagged" in n or "different" in n else "why"}">{escape(n)}</p>'
        for n in cmp.notes
    )
    figure = (
        f'<img src="{_uri(png, "image/png")}" alt="loss of every run">'
        if png is not None
        else '<p class="why">no run logged a loss</p>'
    )
    title = f"loratrain compare: {len(cmp.runs)} runs"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}{_EXTRA_STYLE}</style></head>
<body data-images="pending">
<h1>{escape(title)}</h1>
<p>Built {escape(built)}.</p>
<div id="notes">{notes}</div>
<h2 id="ranking-title">Ranking</h2>
{_ranking_html(cmp)}
<h2 id="curves">Loss of every run</h2>
{figure}
<h2 id="samples-title">Samples: run × step by prompt</h2>
{_grid_html(cmp)}
<script>{_SCRIPT}</script>
</body></html>
"""
    target = folder / HTML_NAME
    write_text(target, page)
    written["html"] = target
    return written
