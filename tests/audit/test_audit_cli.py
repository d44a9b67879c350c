"""The audit verb around its checks: `check`'s pointer, the page in a real browser, imports, the missing extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from audit_data import TRIGGER, clean_folder, config, plant
from helpers import PROBE, browser_dump, loratrain, make_project, run_cli


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORATRAIN_CACHE_DIR", str(tmp_path / "cache"))


def test_check_points_at_audit_until_it_ran_on_the_dataset_as_it_is(tmp_path):
    root = tmp_path / "project"
    make_project(root)
    env = {"LORATRAIN_CACHE_DIR": str(tmp_path / "cache")}
    first = loratrain(root, "check", "mychar.toml", **env)
    assert first.returncode == 0, first.stderr
    assert "dataset not audited yet: `loratrain audit mychar.toml`" in first.stdout
    audited = loratrain(root, "audit", "mychar.toml", **env)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    again = loratrain(root, "check", "mychar.toml", **env)
    assert "audit" not in again.stdout
    caption = root / "train" / "10_mychar" / "img0.txt"
    caption.write_text("photo of mychar, edited\n")
    os.utime(caption, (1, 1))  # even an older mtime is a change
    changed = loratrain(root, "check", "mychar.toml", **env)
    assert "dataset changed since the last audit: run `loratrain audit mychar.toml`" in changed.stdout
    # The audit itself wrote nothing into the dataset.
    assert sorted(p.name for p in (root / "train" / "10_mychar").iterdir()) == [
        "img0.png",
        "img0.txt",
        "img1.png",
        "img1.txt",
    ]


def test_audit_imports_no_heavy_package(tmp_path):
    clean_folder(tmp_path / "train" / f"10_{TRIGGER}", 3)
    cfg = config(tmp_path)
    env = {**os.environ, "LORATRAIN_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "audit", str(cfg)], capture_output=True, text=True, timeout=120, env=env
    )
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY:")] == ["HEAVY:"], result.stderr


def test_missing_extra_is_one_clear_line(tmp_path, monkeypatch):
    clean_folder(tmp_path / "train" / f"10_{TRIGGER}", 1)
    cfg = config(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    result = run_cli("audit", str(cfg))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "pip install 'loratrain[audit]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def chromium() -> str:
    import shutil

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
        self.rows: list[dict] = []
        self._row: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "tr" and "data-image" in a:
            self._row = {**a, "img": None, "kinds": []}
            self.rows.append(self._row)
        elif tag == "img" and self._row is not None:
            self._row["img"] = a
        elif tag == "li" and self._row is not None:
            self._row["kinds"].append(a["data-kind"])

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None


def test_page_shows_every_flagged_image_beside_its_findings(chromium, tmp_path):
    plant(tmp_path)
    cfg = config(tmp_path, dataset="shuffle_caption = true\nkeep_tokens = 1\ncache_latents_to_disk = true\n")
    result = run_cli("audit", str(cfg), "--json", "--html", str(tmp_path / "page"))
    data = json.loads(result.stdout)
    page = Path(data["html"])
    dom = _Dom()
    dom.feed(browser_dump(chromium, page, tmp_path / "profile"))
    flagged = {f["image"] for f in data["findings"] if f["image"]}
    rows = {r["data-image"]: r for r in dom.rows}
    assert set(rows) == flagged
    for image, row in rows.items():
        assert sorted(row["kinds"]) == sorted(f["kind"] for f in data["findings"] if f["image"] == image)
    # Every decodable flagged image has a thumbnail the browser decoded; the undecodable ones say so instead.
    undecodable = {f["image"] for f in data["findings"] if f["kind"] in ("undecodable", "truncated")}
    with_img = [r for r in dom.rows if r["img"] is not None]
    assert {r["data-image"] for r in with_img} == flagged - undecodable
    assert all(int(r["img"]["data-natural-width"]) > 0 for r in with_img)
    assert dom.body.get("data-images") == f"{len(with_img)}/{len(with_img)}"
