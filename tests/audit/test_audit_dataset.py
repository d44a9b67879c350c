"""`loratrain audit` on generated datasets: one planted defect per file, every one named with its file; a clean
dataset of several hundred images gets no warning. Images are tiny (128 px) so the tests stay quick."""

from __future__ import annotations

import json
import zipfile

import pytest
from audit_data import (
    NAME,
    SIDE,
    TRIGGER,
    audit_json,
    caption,
    clean_folder,
    config,
    kinds_by_file,
    latents,
    plant,
    save,
    set_mtime,
    smooth,
    write_npz,
)
from helpers import run_cli


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORATRAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LORATRAIN_AUDIT_WORKERS", "2")


def test_every_planted_defect_is_named_with_its_file(tmp_path):
    planted = plant(tmp_path)
    cfg = config(tmp_path, dataset="shuffle_caption = true\nkeep_tokens = 1\ncache_latents_to_disk = true\n")
    code, data = audit_json(cfg)
    found = kinds_by_file(data)
    missed = {f: k for f, k in planted.items() if k not in found.get(f, set())}
    assert missed == {}, json.dumps(data["findings"], indent=1)
    assert code == 2 and data["ok"] is False  # errors: undecodable, truncated, 16-bit, stale caches
    # The clean images of the same folder get nothing.
    clean = [f for f in found if "/img0" in f]
    assert clean == []
    # Each finding has the documented fields, and each error is also a problem in the shared --json shape.
    assert all(set(f) == {"file", "kind", "severity", "message", "fix", "image"} for f in data["findings"])
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    assert {(p["file"], p["key"]) for p in data["problems"]} == {(f["file"], f["kind"]) for f in errors}
    # Nothing in the dataset changed without --fix-cache.
    assert (tmp_path / "train" / f"10_{TRIGGER}" / f"stale_{NAME}_sdxl.npz").exists()


def test_text_encoder_cache_older_than_its_caption(tmp_path):
    folder = tmp_path / "train" / f"10_{TRIGGER}"
    clean_folder(folder, 3)
    import numpy as np

    cache = write_npz(folder / "img0001_te_outputs.npz", hidden_state1=np.zeros(2), hidden_state2=np.zeros(2),
                      pool2=np.zeros(2))  # fmt: skip
    set_mtime(cache, 600)
    cfg = config(
        tmp_path,
        extra="",
        dataset="cache_text_encoder_outputs_to_disk = true",
    )
    cfg.write_text(cfg.read_text().replace('network_module = "networks.lora"', 'network_module = "networks.lora"\n'
                   "network_train_unet_only = true"))  # fmt: skip
    code, data = audit_json(cfg)
    assert kinds_by_file(data) == {str(cache): {"te_cache_stale"}}
    assert code == 2


def test_fix_cache_deletes_only_caches_sd_scripts_would_wrongly_reuse(tmp_path):
    plant(tmp_path)
    folder = tmp_path / "train" / f"10_{TRIGGER}"
    (folder / "twocache_0192x0128_sdxl.npz").unlink()  # which of two caches sd-scripts picks is up to the file system
    before = {p.name for p in folder.iterdir()}
    cfg = config(tmp_path, dataset="shuffle_caption = true\nkeep_tokens = 1\ncache_latents_to_disk = true\n")
    result = run_cli("audit", str(cfg), "--fix-cache")
    gone = before - {p.name for p in folder.iterdir()}
    assert gone == {
        f"stale_{NAME}_sdxl.npz",
        f"shape_{NAME}_sdxl.npz",
        f"resized_0192x{SIDE:04d}_sdxl.npz",
        f"badzip_{NAME}_sdxl.npz",
    }
    for name in sorted(gone):
        assert f"deleted stale cache: {folder / name}" in result.stdout
    # The old-style cache is reported but kept: nothing says it is wrong.
    assert (folder / "oldstyle.npz").exists()
    code, data = audit_json(cfg)
    kinds = {f["kind"] for f in data["findings"]}
    assert not kinds & {"latent_cache_stale", "latent_cache_shape", "latent_cache_size", "cache_unreadable"}


def test_clean_dataset_of_several_hundred_images_gets_no_warning(tmp_path):
    clean_folder(tmp_path / "train" / f"10_{TRIGGER}", 300)
    clean_folder(tmp_path / "train" / "3_second", 60, start=300, trigger="second")
    cfg = config(tmp_path, dataset="shuffle_caption = true\nkeep_tokens = 1\ncache_latents_to_disk = true\n")
    result = run_cli("audit", str(cfg))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found" in result.stdout
    assert "360 images" in result.stdout
    code, data = audit_json(cfg, "--strict")
    assert (code, data["findings"], data["ok"]) == (0, [], True)
    assert data["decoded"] == 0  # the second audit reused the first one's results
    assert [d["trigger"] for d in data["folders"]] == [TRIGGER, "second"] or sorted(
        d["trigger"] for d in data["folders"]
    ) == sorted([TRIGGER, "second"])


def test_strict_makes_warnings_fail(tmp_path):
    folder = tmp_path / "train" / f"10_{TRIGGER}"
    clean_folder(folder, 3)
    save(smooth(5, size=(SIDE // 2, SIDE // 2)), folder / "small.png")
    caption(folder / "small.png", f"{TRIGGER}, small")
    cfg = config(tmp_path)
    assert run_cli("audit", str(cfg)).returncode == 0
    result = run_cli("audit", str(cfg), "--strict")
    assert result.returncode == 2
    assert "upscaled" in result.stdout and str(folder / "small.png") in result.stdout


def test_trigger_option_and_json_failure_shape(tmp_path):
    folder = tmp_path / "train" / f"10_{TRIGGER}"
    clean_folder(folder, 3)
    cfg = config(tmp_path)
    code, data = audit_json(cfg, "--trigger", "ohwx")
    assert code == 0
    assert {f["kind"] for f in data["findings"]} == {"trigger_missing"}
    assert len(data["findings"]) == 3
    missing = tmp_path / "nothing.toml"
    result = run_cli("audit", str(missing), "--json")
    body = json.loads(result.stdout)
    assert result.returncode == 2 and body["ok"] is False
    assert set(body) == {"ok", "problems"}
    assert set(body["problems"][0]) == {"file", "line", "key", "severity", "message", "fix"}


def test_npz_shapes_reads_headers_only(tmp_path):
    from loratrain.audit.caches import npz_shapes

    path = write_npz(tmp_path / "x.npz", **latents(12, 9))
    assert npz_shapes(str(path))["latents"] == (4, 12, 9)
    with zipfile.ZipFile(path) as zf:
        assert "latents.npy" in zf.namelist()


def test_dataset_config_subsets_cache_info_and_a_missing_folder(tmp_path):
    import json as _json

    folder = tmp_path / "imgs"
    clean_folder(folder, 3)
    info = folder / "metadata_cache.json"
    info.write_text(_json.dumps({str(folder / "img0000.png"): {"caption": "old", "resolution": [SIDE, SIDE]}}))
    set_mtime(info, 600)  # written before the images were last changed
    ds = tmp_path / "datasets.toml"
    ds.write_text(
        f"""[general]
caption_extension = ".txt"
[[datasets]]
resolution = {SIDE}
[[datasets.subsets]]
image_dir = "{folder}"
class_tokens = "{TRIGGER}"
cache_info = true
[[datasets.subsets]]
image_dir = "{tmp_path / "gone"}"
""",
        encoding="utf-8",
    )
    cfg = config(tmp_path)
    text = cfg.read_text().replace(f'train_data_dir = "{tmp_path / "train"}"', f'dataset_config = "{ds}"')
    cfg.write_text(text)
    code, data = audit_json(cfg)
    assert kinds_by_file(data) == {str(info): {"info_cache_stale"}, str(tmp_path / "gone"): {"folder_missing"}}
    assert code == 2
    run_cli("audit", str(cfg), "--fix-cache")
    assert not info.exists() and (folder / "img0000.png").exists()


def test_cache_name_sizes_follow_sd_scripts_walk():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from loratrain.audit.caches import sized_caches, sizes_from_names

    stems = st.text(alphabet="abc_x0123", min_size=1, max_size=8)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.dictionaries(stems, st.tuples(st.integers(1, 4096), st.integers(1, 4096)), max_size=8))
    def check(sizes):
        images = sorted(f"{s}.png" for s in sizes)
        names = {f"{s}_{w:04d}x{h:04d}_sdxl.npz" for s, (w, h) in sizes.items()}
        found = sizes_from_names(images, sized_caches(names))  # never raises, whatever the names
        for image, (cache, size) in found.items():
            stem = image[:-4]
            assert cache.startswith(stem)  # sd-scripts' prefix match
            if cache == f"{stem}_{sizes[stem][0]:04d}x{sizes[stem][1]:04d}_sdxl.npz":
                assert size == sizes[stem]

    check()
