"""The sample images sd-scripts drew during training, matched to prompts and steps by their file names.

sd-scripts (library/train_util.py, `sample_image_inference`, at 48d368f) saves each sample as
`<output_dir>/sample/[<output_name>_]<when>_<prompt index:02d>_<YYYYmmddHHMMSS>[_<seed>].png`, where
`<when>` is `<step:06d>` for a sample drawn every N steps and `e<epoch:06d>` for one drawn at an epoch's
end; the prefix is absent when output_name is not set, the seed suffix when the prompt sets no seed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

SAMPLE_FOLDER = "sample"
_PATTERN = re.compile(
    r"^(?:(?P<name>.+)_)?(?:e(?P<epoch>\d{6,})|(?P<step>\d{6,}))_(?P<index>\d{2,})_(?P<stamp>\d{14})"
    r"(?:_(?P<seed>-?\d+))?\.png$"
)


Span = tuple[dt.datetime, dt.datetime]
Window = Union[Span, list[Span]]


def inside(stamp: dt.datetime, window: Window) -> bool:
    """Whether `stamp` falls in the window, or in one of a resumed run's launch windows."""
    spans = window if isinstance(window, list) else [window]
    return any(start <= stamp <= end for start, end in spans)


@dataclass(frozen=True)
class SampleFile:
    path: Path
    name: str | None  # the output_name prefix, None when there was none
    kind: str  # "step" or "epoch"
    number: int
    index: int  # prompt index in the prompt file, from 0
    stamp: dt.datetime  # local time the image was saved (from the name)
    seed: int | None

    @property
    def column(self) -> tuple[str, int]:
        return (self.kind, self.number)


def parse_name(filename: str, output_name: str | None = None, any_name: bool = False) -> SampleFile | None:
    """A sample file name -> its parts; None when sd-scripts would not have written it for this output_name.

    `any_name` accepts every prefix (an output_dir without a record: the name is not known)."""
    m = _PATTERN.match(filename)
    if m is None:
        return None
    name = m.group("name")
    if not any_name and name != output_name:
        # The regex may split a name that itself ends in _<6 digits>_<2 digits>...; check the exact prefix.
        if output_name is None or not filename.startswith(f"{output_name}_"):
            return None
        m = _PATTERN.match("x_" + filename[len(output_name) + 1 :])
        if m is None or m.group("name") != "x":
            return None
        name = output_name
    try:
        stamp = dt.datetime.strptime(m.group("stamp"), "%Y%m%d%H%M%S")
    except ValueError:
        return None
    epoch = m.group("epoch")
    return SampleFile(
        path=Path(filename),
        name=name,
        kind="epoch" if epoch is not None else "step",
        number=int(epoch if epoch is not None else m.group("step")),
        index=int(m.group("index")),
        stamp=stamp,
        seed=int(m.group("seed")) if m.group("seed") is not None else None,
    )


@dataclass
class SampleGrid:
    folder: Path
    columns: list[tuple[str, int]] = field(default_factory=list)  # (kind, number) in the order drawn
    rows: list[int] = field(default_factory=list)  # prompt indices
    prompts: dict[int, str] = field(default_factory=dict)  # index -> prompt text (from the prompt file)
    cells: dict[tuple[int, tuple[str, int]], SampleFile] = field(default_factory=dict)  # (row, column) -> file
    reason: str = ""  # why the grid is empty
    skipped: int = 0  # files named like samples from another run (other name or time)

    @staticmethod
    def label(column: tuple[str, int]) -> str:
        return f"{column[0]} {column[1]}"


def collect(
    output_dir: Path,
    output_name: str | None,
    any_name: bool = False,
    prompt_file: Path | None = None,
    window: Window | None = None,
) -> SampleGrid:
    """Every sample of this run under output_dir/sample; with `window` (local times: one (start, end) or one per
    launch of a resumed run), only files saved in it.
    Of several files for one cell (a run repeated under the same name) the newest wins."""
    folder = output_dir / SAMPLE_FOLDER
    grid = SampleGrid(folder=folder)
    if prompt_file is not None:
        grid.prompts = _prompt_texts(prompt_file)
    if not folder.is_dir():
        grid.reason = (
            f"no sample folder {folder}: sd-scripts draws samples only with sample_prompts and "
            "sample_every_n_steps/sample_every_n_epochs (or sample_at_first)"
        )
        return grid
    found: dict[tuple[int, tuple[str, int]], SampleFile] = {}
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        grid.reason = f"cannot list {folder}: {exc.strerror or exc}"
        return grid
    for fname in names:
        s = parse_name(fname, output_name, any_name)
        if s is None:
            continue
        if window is not None and not inside(s.stamp, window):
            grid.skipped += 1
            continue
        s = SampleFile(folder / fname, s.name, s.kind, s.number, s.index, s.stamp, s.seed)
        key = (s.index, s.column)
        if key not in found or found[key].stamp <= s.stamp:
            found[key] = s
    grid.cells = found
    first_seen: dict[tuple[str, int], dt.datetime] = {}
    for s in found.values():
        if s.column not in first_seen or s.stamp < first_seen[s.column]:
            first_seen[s.column] = s.stamp
    # Drawing order: step and epoch samples interleave in time; ties (same second) by kind then number.
    grid.columns = sorted(first_seen, key=lambda c: (first_seen[c], c[1], c[0]))
    grid.rows = sorted({s.index for s in found.values()} | set(grid.prompts))
    if not found:
        grid.reason = f"no sample images of this run in {folder}" + (
            f" ({grid.skipped} from other runs)" if grid.skipped else ""
        )
    return grid


def _prompt_texts(path: Path) -> dict[int, str]:
    from loratrain.plan.prompts import load_prompt_file

    loaded = load_prompt_file(path)
    return {p.index: p.prompt for p in loaded.prompts}


def thumbnail_jpeg(path: Path, size: int) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """The image downscaled to fit `size` x `size`, as JPEG bytes; with its original and new sizes."""
    import io

    from PIL import Image

    with Image.open(path) as im:
        original = im.size
        im.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        rgb = im.convert("RGB")
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=85)
    return buf.getvalue(), original, rgb.size
