"""The HTML page in a real browser: Debian's Chromium, headless, loads report.html from disk (no network) and
the DOM it ends with is checked: every image decoded (naturalWidth > 0) and one grid cell per sample file, in
the row of its prompt and the column of its step. Skips only where Chromium is missing outside CI."""

from __future__ import annotations

from helpers import browser_dom

from loratrain.report.samples import parse_name


def test_report_page_loads_every_image_and_places_every_sample(chromium, finished_run, tmp_path):
    from loratrain.report import html
    from loratrain.report.build import build
    from loratrain.report.figures import THUMB
    from loratrain.report.run import locate

    sample_dir = finished_run.parent.parent / "sample"
    missing = sorted(sample_dir.iterdir())[0]
    missing.unlink()  # one cell without its sample
    written = html.write(build(locate(finished_run), thumbnails=THUMB), tmp_path / "report")
    dom = browser_dom(chromium, written["html"], tmp_path / "profile")
    # The page's own load handler counted the decoded images.
    assert len(dom.images) == 3 + 5  # figures (loss, lr, update norms; the grid is the table) + 5 thumbnails
    assert dom.body.get("data-images") == f"{len(dom.images)}/{len(dom.images)}"
    assert all(int(img["data-natural-width"]) > 0 for img in dom.images)
    assert all("broken" not in img.get("class", "") for img in dom.images)
    by_file = {c["data-file"]: c for c in dom.cells if "data-file" in c}
    files = sorted(p.name for p in sample_dir.iterdir())
    assert sorted(by_file) == files
    for name in files:
        s = parse_name(name, "mylora")
        cell = by_file[name]
        assert cell["data-prompt"] == str(s.index) and cell["data-column"] == f"{s.kind} {s.number}"
        assert cell["img"] is not None and int(cell["img"]["data-natural-width"]) == 64
    gone = parse_name(missing.name, "mylora")
    empty = [c for c in dom.cells if "data-file" not in c]
    assert [(c["data-prompt"], c["data-column"]) for c in empty] == [(str(gone.index), f"step {gone.number}")]
