"""The HTML page in a real browser: Debian's Chromium, headless, loads report.html from disk (no network) and
the DOM it ends with is checked: every image decoded (naturalWidth > 0) and one grid cell per sample file, in
the row of its prompt and the column of its step. Skips only where Chromium is missing outside CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from loratrain.report.samples import parse_name


@pytest.fixture
def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; CI must install it (.ci/run: apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); under CI=true this test fails instead")


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.body: dict = {}
        self.images: list[dict] = []
        self.cells: list[dict] = []
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "td" and "data-prompt" in a:
            self._cell = {**a, "img": None}
            self.cells.append(self._cell)
        elif tag == "img":
            self.images.append(a)
            if self._cell is not None:
                self._cell["img"] = a

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None


def test_report_page_loads_every_image_and_places_every_sample(chromium, finished_run, tmp_path):
    from loratrain.report import html
    from loratrain.report.build import build
    from loratrain.report.figures import THUMB
    from loratrain.report.run import locate

    sample_dir = finished_run.parent.parent / "sample"
    missing = sorted(sample_dir.iterdir())[0]
    missing.unlink()  # one cell without its sample
    written = html.write(build(locate(finished_run), thumbnails=THUMB), tmp_path / "report")
    profile = tmp_path / "profile"
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            written["html"].resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = _Dom()
    dom.feed(result.stdout)
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
