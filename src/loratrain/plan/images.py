"""Image width and height read from file headers, without decoding pixels.

sd-scripts sizes images with the `imagesize` package (header only, EXIF orientation ignored), so the
raw header size is the size it buckets by. We read a few kilobytes per file; for JPEG we walk the
marker segments (seeking over large EXIF/ICC blocks) until the first start-of-frame marker, which also
covers progressive files and files whose EXIF block comes first.
"""

from __future__ import annotations

import os
import struct

# The first read; enough for every PNG/WebP/BMP header and for most JPEGs' SOF marker.
_HEAD = 4096
# O_BINARY matters on Windows only (no newline translation).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block

# JPEG start-of-frame markers carry the size. C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers without a length field.
_STANDALONE = frozenset({0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8})

_U16BE = struct.Struct(">H")
_U32BE2 = struct.Struct(">II")
_BMP_INFO = struct.Struct("<ii")
_BMP_CORE = struct.Struct("<HH")


class ImageHeaderError(Exception):
    """A file named like an image whose header we cannot read. The message says what is wrong."""


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) from the header of a PNG, JPEG, WebP or BMP file.

    Raises `ImageHeaderError` for a truncated, corrupt or unsupported file and `OSError` when the
    file cannot be opened.
    """
    width, height, _orientation = image_header(path)
    return width, height


def image_header(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) as stored; orientation is 1 (upright) unless a JPEG says otherwise.

    A camera JPEG with orientation 6 is stored sideways and shown upright by viewers; sd-scripts
    trains the stored pixels, so the caller may want to warn about it.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        head = os.read(fd, _HEAD)
        if head[:2] == b"\xff\xd8":
            return _jpeg(fd, head)
        width, height = _size_from_head(head)
        return width, height, 1
    finally:
        os.close(fd)


def _size_from_head(head: bytes) -> tuple[int, int]:
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:2] == b"BM":
        return _bmp(head)
    if not head:
        raise ImageHeaderError("empty file")
    raise ImageHeaderError("not a PNG, JPEG, WebP or BMP file (unknown header)")


def _checked(width: int, height: int, kind: str) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise ImageHeaderError(f"{kind} header gives an impossible size {width}x{height}")
    return width, height


def _png(head: bytes) -> tuple[int, int]:
    if len(head) < 24:
        raise ImageHeaderError("truncated PNG (no complete IHDR chunk)")
    if head[12:16] != b"IHDR":
        raise ImageHeaderError("corrupt PNG (first chunk is not IHDR)")
    width, height = _U32BE2.unpack_from(head, 16)
    return _checked(width, height, "PNG")


def _bmp(head: bytes) -> tuple[int, int]:
    if len(head) < 26:
        raise ImageHeaderError("truncated BMP header")
    header_size = int.from_bytes(head[14:18], "little")
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sides
        width, height = _BMP_CORE.unpack_from(head, 18)
    elif header_size >= 16:
        width, height = _BMP_INFO.unpack_from(head, 18)
        height = abs(height)  # negative height = rows stored top-down
    else:
        raise ImageHeaderError(f"corrupt BMP (DIB header size {header_size})")
    return _checked(width, height, "BMP")


def _webp(head: bytes) -> tuple[int, int]:
    if len(head) < 30:
        raise ImageHeaderError("truncated WebP header")
    chunk = head[12:16]
    if chunk == b"VP8 ":  # lossy: a key frame starts with the 9d 01 2a start code after a 3-byte tag
        if head[23:26] != b"\x9d\x01\x2a":
            raise ImageHeaderError("corrupt WebP (VP8 start code missing)")
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        height = int.from_bytes(head[28:30], "little") & 0x3FFF
        return _checked(width, height, "WebP")
    if chunk == b"VP8L":  # lossless: signature byte then two 14-bit (size - 1) fields
        if head[20] != 0x2F:
            raise ImageHeaderError("corrupt WebP (VP8L signature missing)")
        bits = int.from_bytes(head[21:25], "little")
        return _checked((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "WebP")
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1) fields
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return _checked(width, height, "WebP")
    raise ImageHeaderError(f"unsupported WebP chunk {chunk!r}")


def _jpeg(fd: int, head: bytes) -> tuple[int, int, int]:
    buf = head
    base = 0  # file offset of buf[0]
    pos = 2
    orientation = 1
    while True:
        # Make sure the marker and a possible 7-byte SOF body are in the buffer.
        if pos + 9 > len(buf):
            more = _read_at(fd, base + pos, 65536 + 16)
            if len(more) < 2:
                raise ImageHeaderError("truncated JPEG (no frame header before end of file)")
            buf, base, pos = more, base + pos, 0
        if buf[pos] != 0xFF:
            raise ImageHeaderError(f"corrupt JPEG (no marker at byte {base + pos})")
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == 0xD9 or marker == 0xDA:
            raise ImageHeaderError("corrupt JPEG (image data starts before any frame header)")
        if len(buf) - pos < 4:
            more = _read_at(fd, base + pos, 65536 + 16)
            buf, base, pos = more, base + pos, 0
            if len(buf) < 4:
                raise ImageHeaderError("truncated JPEG (segment header cut off)")
        (length,) = _U16BE.unpack_from(buf, pos + 2)
        if length < 2:
            raise ImageHeaderError(f"corrupt JPEG (segment length {length} at byte {base + pos})")
        if marker in _SOF_MARKERS:
            if len(buf) - pos < 9:
                more = _read_at(fd, base + pos, 16)
                buf, base, pos = more, base + pos, 0
                if len(buf) < 9:
                    raise ImageHeaderError("truncated JPEG (frame header cut off)")
            height, width = _U16BE.unpack_from(buf, pos + 5)[0], _U16BE.unpack_from(buf, pos + 7)[0]
            return (*_checked(width, height, "JPEG"), orientation)
        if marker == 0xE1 and buf[pos + 4 : pos + 10] == b"Exif\x00\x00":
            end = pos + 2 + length
            segment = buf[pos + 10 : end] if end <= len(buf) else _read_at(fd, base + pos + 10, length - 8)
            orientation = _exif_orientation(segment)
        pos += 2 + length


def _exif_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 in a TIFF-structured EXIF block; 1 when absent or unreadable."""
    if tiff[:2] == b"II":
        order = "<"
    elif tiff[:2] == b"MM":
        order = ">"
    else:
        return 1
    try:
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for i in range(min(count, 256)):
            tag, kind = struct.unpack_from(order + "HH", tiff, ifd + 2 + 12 * i)
            if tag == 0x0112 and kind == 3:  # SHORT, stored in the first two bytes of the value field
                (value,) = struct.unpack_from(order + "H", tiff, ifd + 2 + 12 * i + 8)
                return value if 1 <= value <= 8 else 1
    except struct.error:
        pass
    return 1


def _read_at(fd: int, offset: int, size: int) -> bytes:
    # lseek + read rather than os.pread, which Windows lacks.
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)
