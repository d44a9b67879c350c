"""The report's figures as PNG bytes: loss, learning rates, update norms per block, and the sample grid.

matplotlib draws on its Agg canvas (no display, no pyplot); the sample grid is pasted together with Pillow
from the same thumbnails the HTML page embeds.
"""

from __future__ import annotations

import io
import math

from loratrain.report import curves as curves_mod
from loratrain.report.build import Report

THUMB = 256  # longest side of a sample thumbnail, pixels


def _subplots(figsize: tuple[float, float]):
    """A figure drawn by the Agg canvas directly: no pyplot, no display, no global figure registry."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _marks(ax, report: Report) -> None:
    for i, step in enumerate(report.save_steps()):
        ax.axvline(step, color="tab:green", alpha=0.35, lw=1, label="save" if i == 0 else None)
    for i, step in enumerate(report.curves.resumes):
        ax.axvline(step, color="tab:red", ls="--", lw=1.2, label="resume" if i == 0 else None)


def loss_figure(report: Report) -> bytes | None:
    series = report.curves.series
    tags: list[str] = [t for t in ("loss/current", "loss/average") if t in series and series[t].steps]
    tags += [t for t in series if t.startswith("loss/validation/step") and series[t].steps]
    if not tags:
        return None
    fig, ax = _subplots((10, 4))
    longest = max(len(series[t].steps) for t in tags)
    weight = curves_mod.smoothing_weight(longest)
    for tag in tags:
        s = series[tag]
        if tag == "loss/current":
            ax.plot(s.steps, s.values, color="tab:blue", alpha=0.25, lw=0.6, label="loss/current (raw)")
            ax.plot(
                s.steps,
                curves_mod.smooth(s.values, weight),
                color="tab:blue",
                lw=1.4,
                label=f"loss/current (smoothed, {weight})",
            )
        else:
            ax.plot(s.steps, s.values, lw=1.2, label=tag, color="tab:orange" if tag == "loss/average" else None)
    _marks(ax, report)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def lr_figure(report: Report) -> bytes | None:
    series = report.curves.series
    tags = [t for t in series if t.startswith("lr/") and series[t].steps]
    if not tags:
        return None
    fig, ax = _subplots((10, 3.2))
    for tag in tags:
        ax.plot(series[tag].steps, series[tag].values, lw=1.2, label=tag)
    _marks(ax, report)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def norms_figure(report: Report) -> bytes | None:
    saves = [h for h in report.saves if h.block_norms]
    if not saves:
        return None
    from loratrain.report.health import block_order

    blocks = sorted({b for h in saves for b in h.block_norms}, key=block_order)
    fig, ax = _subplots((10, 3.6))
    x = list(range(len(saves)))
    for b in blocks:
        ys = [h.block_norms.get(b, math.nan) for h in saves]
        ax.plot(x, ys, marker="o", ms=3, lw=1, label=b)
    ax.set_xticks(x)
    ax.set_xticklabels([_save_label(h) for h in saves], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("‖ΔW‖ per block")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, ncol=4)
    fig.tight_layout()
    return _png(fig)


def _save_label(h) -> str:
    if h.step is not None:
        return f"step {h.step}"
    if h.epoch is not None:
        return f"epoch {h.epoch}"
    return h.path.stem


def grid_figure(report: Report, thumbs: dict) -> bytes | None:
    """All thumbnails in one PNG: a row per prompt, a column per step/epoch, labelled."""
    if not thumbs:
        return None
    from PIL import Image, ImageDraw

    g = report.grid
    cell = THUMB + 8
    left, top = 60, 24
    img = Image.new("RGB", (left + cell * len(g.columns), top + cell * len(g.rows)), "white")
    draw = ImageDraw.Draw(img)
    for c, col in enumerate(g.columns):
        draw.text((left + c * cell + 4, 6), g.label(col), fill="black")
    for r, index in enumerate(g.rows):
        draw.text((6, top + r * cell + cell // 2), f"#{index}", fill="black")
        for c, col in enumerate(g.columns):
            item = thumbs.get((index, col))
            if item is None:
                continue
            with Image.open(io.BytesIO(item[0])) as t:
                img.paste(t, (left + c * cell + 4, top + r * cell + 4))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()
