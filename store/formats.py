"""Recognise what a file is before DuckDB reads it.

- container: gzip, Parquet, XLSX by their magic bytes (not by the name, so a renamed file is
  still read for what it is, and a PNG named ``.csv`` is refused);
- text encoding: UTF-8 (a BOM is dropped), UTF-16 with a BOM, else GB18030 (a superset of
  GBK, what Excel writes on Chinese Windows). Non-UTF-8 text is transcoded to a temporary
  UTF-8 file in a streaming pass, so DuckDB's own reader does the parsing;
- delimiter: comma, semicolon, tab or pipe, the one that splits the sampled lines into the
  same number of fields (>1) most consistently.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LoadRefused

SAMPLE_BYTES = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass
class FileInfo:
    """What a file turned out to be."""

    path: str                    # the file DuckDB should read (maybe a transcoded temporary copy)
    display_name: str            # the user's file name, for messages
    container: str               # 'csv' | 'parquet' | 'xlsx'
    compression: str = "none"    # 'gzip' | 'none'
    encoding: str = "utf-8"      # the original encoding
    delimiter: str = ","
    headers: list[str] = field(default_factory=list)
    temporary: str | None = None  # a transcoded copy to delete after the load
    ascii_sample: bool = False   # the sampled start is plain ASCII (so the encoding is a guess)

    def cleanup(self) -> None:
        if self.temporary and os.path.exists(self.temporary):
            os.unlink(self.temporary)


def _magic(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(8)


def _open_text_bytes(path: str, compression: str):
    return gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")


def _read_sample(path: str, compression: str, name: str) -> bytes:
    try:
        with _open_text_bytes(path, compression) as f:
            return f.read(SAMPLE_BYTES)
    except (OSError, EOFError) as exc:
        raise LoadRefused(f"{name}: the file looks gzip-compressed but cannot be decompressed ({exc}).") from exc


def _detect_encoding(sample: bytes, name: str) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise LoadRefused(f"{name}: the file contains binary data (NUL bytes) and is not a text CSV file.")
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            decoder.decode(sample, final=len(sample) < SAMPLE_BYTES)
            return encoding
        except UnicodeDecodeError:
            continue
    raise LoadRefused(f"{name}: the text cannot be decoded as UTF-8 or GBK/GB18030; save it as UTF-8 CSV.")


def _detect_delimiter(text: str, name: str) -> str:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        raise LoadRefused(f"{name}: the file is empty.")
    best, best_score = ",", -1.0
    for delim in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines[:-1] if len(lines) > 1 else lines)), delimiter=delim))
        except csv.Error:
            continue
        counts = [len(r) for r in rows if r]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for c in counts if c == counts[0]) / len(counts)
        score = consistent * 1000 + counts[0]
        if score > best_score:
            best, best_score = delim, score
    return best


def _headers(text: str, delimiter: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return unique_headers(first)


def unique_headers(raw: list) -> list[str]:
    """Headers made usable as column names: blanks named ``column_N``, repeats suffixed ``_2``."""
    seen: dict[str, int] = {}
    out = []
    for i, h in enumerate(raw, start=1):
        h = str(h).strip().lstrip("\ufeff") if h is not None else ""
        if not h:
            h = f"column_{i}"
        base = h
        while h in seen:
            seen[base] += 1
            h = f"{base}_{seen[base]}"
        seen.setdefault(h, 1)
        out.append(h)
    return out


def _transcode(path: str, compression: str, encoding: str, limit_bytes: int | None = None) -> str:
    """A temporary UTF-8 copy of ``path`` (streamed; with ``limit_bytes``, only the whole lines within it)."""
    fd, tmp = tempfile.mkstemp(prefix="opsfunnel-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out, _open_text_bytes(path, compression) as src:
            if limit_bytes is not None:
                head = src.read(limit_bytes)
                if len(head) == limit_bytes and b"\n" in head:
                    head = head[: head.rindex(b"\n") + 1]
                out.write(head.decode(encoding, errors="replace").encode("utf-8"))
                return tmp
            decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
            while True:
                chunk = src.read(8 << 20)
                out.write(decoder.decode(chunk, final=not chunk).encode("utf-8"))
                if not chunk:
                    break
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def inspect(path: str | os.PathLike, display_name: str | None = None, *, encoding: str | None = None,
            limit_bytes: int | None = None) -> FileInfo:
    """Identify ``path``'s container, encoding, delimiter and headers, or refuse it with a reason.

    ``encoding`` forces a text encoding instead of detecting it; ``limit_bytes`` (for previews)
    transcodes only the start of a non-UTF-8 file.
    """
    path = str(path)
    name = display_name or Path(path).name
    if not os.path.exists(path):
        raise LoadRefused(f"{name}: no such file.")
    if os.path.getsize(path) == 0:
        raise LoadRefused(f"{name}: the file is empty.")
    magic = _magic(path)
    if magic.startswith(b"PAR1"):
        return FileInfo(path, name, "parquet")
    if magic.startswith(b"PK\x03\x04"):
        return FileInfo(path, name, "xlsx")
    if magic.startswith(b"\x89PNG") or magic.startswith(b"\xff\xd8\xff") or magic.startswith(b"%PDF"):
        raise LoadRefused(f"{name}: this is an image or PDF, not a CSV, Parquet or XLSX file.")
    compression = "gzip" if magic.startswith(b"\x1f\x8b") else "none"
    sample = _read_sample(path, compression, name)
    if not sample.strip():
        raise LoadRefused(f"{name}: the file is empty.")
    encoding = encoding or _detect_encoding(sample, name)
    text = sample.decode(encoding, errors="ignore")
    delimiter = _detect_delimiter(text, name)
    info = FileInfo(path, name, "csv", compression, encoding, delimiter, _headers(text, delimiter))
    info.ascii_sample = sample.isascii()
    if encoding not in ("utf-8", "utf-8-sig"):
        try:
            info.temporary = _transcode(path, compression, encoding, limit_bytes)
        except UnicodeDecodeError as exc:
            raise LoadRefused(
                f"{name}: the text is not consistently {encoding.upper()} (byte {exc.start} of a later "
                f"part cannot be decoded); save the file in one encoding, preferably UTF-8."
            ) from exc
        info.path, info.compression = info.temporary, "none"
    return info
