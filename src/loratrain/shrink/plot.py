"""`--plot FILE.png`: every layer's singular-value scores against the selection's threshold.

Drawn with pillow (no matplotlib dependency). x: direction index (0 = strongest), y: the score the
selection compares (log10 of σ over the recipe's reference, or log10 σ/σ₀ for sd-scripts' methods).
One thin line per layer, coloured by where the layer lives; the threshold is a red horizontal line.
"""

from __future__ import annotations

import math

from loratrain.errors import ConfigError, Problem

W, H = 1200, 720
LEFT, RIGHT, TOP, BOTTOM = 80, 220, 50, 60
GROUPS = (
    ("lora_te1", "CLIP-L", (31, 119, 180)),
    ("lora_te2", "CLIP-G", (44, 160, 44)),
    ("lora_unet", "UNet", (148, 103, 189)),
)
CONV_COLOUR = (255, 127, 14)


def _colour(name: str, is_conv: bool):
    if is_conv:
        return CONV_COLOUR
    for prefix, _, colour in GROUPS:
        if name.startswith(prefix):
            return colour
    return (120, 120, 120)


def draw(path, outcome, lora) -> None:
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ConfigError(
            [Problem("--plot needs pillow, which is not installed", key="--plot", fix="pip install pillow")]
        ) from None

    series = [(n, s.tolist()) for n, s in outcome.scores.items() if s.numel()]
    finite = [v for _, s in series for v in s if math.isfinite(v) and v > -29]
    thr = outcome.threshold
    if not finite:
        finite = [0.0]
    lo, hi = min(finite), max(finite)
    if thr is not None:
        lo, hi = min(lo, thr), max(hi, thr)
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    xmax = max((len(s) for _, s in series), default=1) - 1 or 1

    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img, "RGBA")
    font = ImageFont.load_default()
    x0, x1, y0, y1 = LEFT, W - RIGHT, TOP, H - BOTTOM

    def px(i, v):
        return x0 + (x1 - x0) * i / xmax, y1 - (y1 - y0) * (v - lo) / (hi - lo)

    d.rectangle([x0, y0, x1, y1], outline="black")
    for t in range(6):  # y ticks
        v = lo + (hi - lo) * t / 5
        _, y = px(0, v)
        d.line([x0 - 4, y, x0, y], fill="black")
        d.text((8, y - 6), f"{v:.2f}", fill="black", font=font)
    for t in range(6):  # x ticks
        i = round(xmax * t / 5)
        x, _ = px(i, lo)
        d.line([x, y1, x, y1 + 4], fill="black")
        d.text((x - 6, y1 + 8), str(i), fill="black", font=font)
    d.text((x0, 15), f"{outcome.selection.text}: singular-value scores per layer", fill="black", font=font)
    d.text(((x0 + x1) // 2 - 60, H - 25), "direction index (0 = strongest)", fill="black", font=font)

    opacity = max(40, min(220, 2000 // max(len(series), 1)))  # many layers: fainter lines
    for name, s in series:
        layer = lora.layers.get(name)
        colour = _colour(name, bool(layer is not None and layer.is_conv))
        pts = [px(i, max(v, lo)) for i, v in enumerate(s) if math.isfinite(v)]
        if len(pts) == 1:
            x, y = pts[0]
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour + (opacity,))
        elif pts:
            d.line(pts, fill=colour + (opacity,), width=1)
    if thr is not None:
        _, y = px(0, thr)
        d.line([x0, y, x1, y], fill=(214, 39, 40), width=2)
        d.text((x1 + 8, y - 6), f"threshold {thr:.3g}", fill=(214, 39, 40), font=font)
    legend = [(label, colour) for _, label, colour in GROUPS] + [("conv (LoCon)", CONV_COLOUR)]
    for i, (label, colour) in enumerate(legend):
        y = y0 + 20 + 18 * i
        d.line([x1 + 8, y, x1 + 30, y], fill=colour, width=3)
        d.text((x1 + 36, y - 6), label, fill="black", font=font)
    img.save(str(path), format="PNG")
