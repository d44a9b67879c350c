"""Image sizes come from file headers and match what PIL reports, for every format sd-scripts trains on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from loratrain.plan.images import ImageHeaderError, image_size

SIZES = [(1, 1), (17, 9), (832, 1216), (1216, 832), (1024, 1024), (3000, 1000), (16383, 2)]


def _save(path: Path, size: tuple[int, int], fmt: str, **kw) -> Path:
    mode = kw.pop("mode", "RGB")
    Image.new(mode, size, 0).save(path, fmt, **kw)
    return path


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "fmt,ext,kw",
    [
        ("PNG", "png", {}),
        ("JPEG", "jpg", {"quality": 70}),
        ("JPEG", "jpeg", {"progressive": True}),
        ("BMP", "bmp", {}),
        ("WEBP", "webp", {"quality": 50}),
        ("WEBP", "webp", {"lossless": True}),
        ("WEBP", "webp", {"mode": "RGBA", "quality": 50}),
    ],
)
def test_header_size_matches_pil_for_each_format(tmp_path, size, fmt, ext, kw):
    if fmt == "WEBP" and max(size) > 16383:
        pytest.skip("WebP sides stop at 16383")
    path = _save(tmp_path / f"img.{ext}", size, fmt, **kw)
    with Image.open(path) as im:
        assert image_size(path) == im.size


def test_webp_extended_header_with_exif_gives_canvas_size(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(tmp_path / "x.webp", (300, 200), "WEBP", exif=exif.tobytes())
    assert path.read_bytes()[12:16] == b"VP8X"
    assert image_size(path) == (300, 200)


def test_jpeg_whose_exif_and_icc_blocks_push_the_frame_header_past_the_first_read(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "x" * 30000  # ImageDescription: a 30 kB APP1 segment before the frame header
    icc = b"\0" * 60000  # and a 60 kB ICC profile (APP2)
    path = _save(tmp_path / "big-exif.jpg", (640, 480), "JPEG", exif=exif.tobytes(), icc_profile=icc)
    assert path.stat().st_size > 90000
    assert image_size(path) == (640, 480)


def test_exif_orientation_is_ignored_like_sd_scripts_does(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90": sd-scripts (imagesize) still sees the stored size
    path = _save(tmp_path / "rot.jpg", (400, 300), "JPEG", exif=exif.tobytes())
    assert image_size(path) == (400, 300)


def test_top_down_bmp_reports_a_positive_height(tmp_path):
    path = _save(tmp_path / "a.bmp", (40, 30), "BMP")
    data = bytearray(path.read_bytes())
    data[22:26] = (-30).to_bytes(4, "little", signed=True)
    path.write_bytes(bytes(data))
    assert image_size(path) == (40, 30)


@pytest.mark.parametrize(
    "fmt,ext,cut", [("PNG", "png", 20), ("JPEG", "jpg", 120), ("WEBP", "webp", 25), ("BMP", "bmp", 20)]
)
def test_truncated_file_is_a_clear_error_not_a_crash(tmp_path, fmt, ext, cut):
    full = io.BytesIO()
    Image.new("RGB", (64, 64)).save(full, fmt)
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(full.getvalue()[:cut])
    with pytest.raises(ImageHeaderError, match="truncated|corrupt"):
        image_size(path)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty file"),
        (b"GIF89a\x01\x00\x01\x00", "unknown header"),
        (b"\xff\xd8\xff\xda\x00\x08" + b"\0" * 40, "image data starts before any frame header"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIEND" + b"\0" * 12, "not IHDR"),
    ],
)
def test_corrupt_headers_name_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageHeaderError, match=message):
        image_size(path)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_of_a_jpeg_is_reported_with_the_stored_size(tmp_path, orientation):
    from loratrain.plan.images import image_header

    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "camera maker"
    path = _save(tmp_path / "phone.jpg", (400, 300), "JPEG", exif=exif.tobytes())
    assert image_header(path) == (400, 300, orientation)
