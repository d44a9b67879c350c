"""Duplicate images: byte-identical files (content hash), the same picture re-encoded or resized (dHash
distance), and two images of one stem in one folder (sd-scripts gives both one caption and one cache)."""

from __future__ import annotations

import os
from collections import defaultdict

# Two 128-bit dHashes this close are one picture. Measured: generated smooth pictures (tests/audit) shrunk to 3/4
# and saved as JPEG at quality 50 move 4-6 bits, while 400 unrelated ones differ by 29 bits or more; among
# scikit-image's 26 sample images the closest different pictures are a stereo pair at 27 bits (its RGB and grey
# chessboards, one picture, are 0 apart).
NEAR_BITS = 10
_BLOCK = 64  # rows compared at once: 64 x n x 16 bytes of xor per step (20 MB at 20,000 images)


def exact_groups(hashes: dict[str, str]) -> list[list[str]]:
    """Files with the same content hash, each group sorted, groups in order of their first file."""
    by_hash: dict[str, list[str]] = defaultdict(list)
    for path, digest in hashes.items():
        by_hash[digest].append(path)
    return sorted((sorted(g) for g in by_hash.values() if len(g) > 1), key=lambda g: g[0])


def near_pairs(hashes: dict[str, str], limit: int = NEAR_BITS) -> list[tuple[str, str, int]]:
    """(first, second, differing bits) for every pair of distinct hashes within `limit` bits, all pairs compared
    with numpy in blocks (20,000 images: 2e8 pairs, about a second)."""
    import numpy as np

    distinct: dict[str, list[str]] = defaultdict(list)
    for path, digest in hashes.items():
        distinct[digest].append(path)
    keys = sorted(distinct)
    pairs: list[tuple[str, str, int]] = []
    for digest in keys:  # different bytes, one picture: the same hash
        group = sorted(distinct[digest])
        pairs.extend((group[0], other, 0) for other in group[1:])
    if len(keys) < 2:
        return sorted(pairs)
    bits = np.frombuffer(b"".join(bytes.fromhex(k) for k in keys), dtype=np.uint64).reshape(len(keys), -1)
    count = _popcount()
    for start in range(0, len(keys), _BLOCK):
        block = bits[start : start + _BLOCK]
        # Only the upper triangle: each block against itself and the keys after it.
        rest = bits[start:]
        distance = count(block[:, None, :] ^ rest[None, :, :]).sum(axis=2)
        rows, cols = np.nonzero(distance <= limit)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i, j = start + r, start + c
            if j > i:
                a, b = sorted(distinct[keys[i]])[0], sorted(distinct[keys[j]])[0]
                pairs.append((min(a, b), max(a, b), int(distance[r, c])))
    return sorted(pairs)


def _popcount():
    import numpy as np

    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def count(x):
        return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1)

    return count


def same_stems(names: list[str]) -> list[list[str]]:
    """Image names of one folder that share a stem (`a.png` and `a.jpg`), each group sorted."""
    by_stem: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_stem[os.path.splitext(name)[0]].append(name)
    return [sorted(g) for _stem, g in sorted(by_stem.items()) if len(g) > 1]
