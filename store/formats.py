"""Recognise what a file is before DuckDB reads it.

- container: gzip, Parquet, XLSX by their magic bytes (not by the name, so a renamed file is
  still read for what it is, and a PNG named ``.csv`` is refused);
- text encoding: UTF-8 (a BOM is dropped), UTF-16 with a BOM, else GB18030 (a superset of
  GBK, what Excel writes on Chinese Windows). Non-UTF-8 text is transcoded to a temporary
  UTF-8 file in a streaming pass, so DuckDB's own reader does the parsing;
- delimiter: comma, semicolon, tab or pipe, the one that splits the sampled lines into the
  same number of fields (>1) most consistently.

Hostile files are refused here, before DuckDB reads a byte: a header line over 1 MB or with more
than ``MAX_COLUMNS`` columns; a gzip file that expands more than ``MAX_GZIP_RATIO`` times its size
(at least 100 MB allowed) or beyond ``MAX_UNCOMPRESSED`` bytes — counted by streaming through the
whole file once, since a gzip trailer only states the last member's size modulo 4 GiB and can be
forged; an XLSX whose members claim the same; a start that is UTF-8 with non-ASCII text followed
by a line that is not (mixed encodings).
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import zlib
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LoadRefused

SAMPLE_BYTES = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
MAX_COLUMNS = 1000
MAX_GZIP_RATIO = float(os.environ.get("OPSFUNNEL_MAX_GZIP_RATIO", "200"))
MAX_UNCOMPRESSED = int(float(os.environ.get("OPSFUNNEL_MAX_UNCOMPRESSED", str(20 * 10**9))))
MIN_EXPANSION_ALLOWED = 100 * 10**6   # any compressed file may expand to 100 MB


def headers_shown(headers: list, limit: int = 30) -> str:
    """Headers for a message: the first ``limit``, then how many more."""
    shown = ", ".join(map(str, headers[:limit])) or "(none)"
    return shown + (f", … and {len(headers) - limit:,} more" if len(headers) > limit else "")


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


def _expansion_allowed(compressed: int) -> int:
    return int(min(MAX_UNCOMPRESSED, max(MAX_GZIP_RATIO * compressed, MIN_EXPANSION_ALLOWED)))


def _refuse_bomb(name: str, compressed: int, allowed: int) -> LoadRefused:
    return LoadRefused(
        f"{name}: the compressed file expands to more than {allowed / 1e6:,.0f} MB "
        f"(over {allowed / max(compressed, 1):,.0f} times its {compressed / 1e6:,.1f} MB); it looks like a "
        f"decompression bomb and was refused. Limits: OPSFUNNEL_MAX_GZIP_RATIO (ratio, default 200) and "
        f"OPSFUNNEL_MAX_UNCOMPRESSED (bytes, default 20 GB).")


def _check_gzip(path: str, name: str) -> None:
    """Stream through the whole gzip file (bounded memory) and refuse a bomb or a broken stream."""
    compressed = os.path.getsize(path)
    allowed = _expansion_allowed(compressed)
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while True:
                chunk = f.read(4 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > allowed:
                    raise _refuse_bomb(name, compressed, allowed)
    except (OSError, EOFError, zlib.error) as exc:
        raise LoadRefused(f"{name}: the file looks gzip-compressed but cannot be decompressed ({exc}).") from exc


def _check_zip(path: str, name: str) -> None:
    """Refuse a zip (XLSX) that is not a zip, or whose members claim a bomb's expansion."""
    compressed = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as z:
            total = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LoadRefused(f"{name}: not a readable XLSX workbook ({exc}).") from exc
    allowed = _expansion_allowed(compressed)
    if total > allowed:
        raise _refuse_bomb(name, compressed, allowed)


def _mixed_utf8(sample: bytes, exc: UnicodeDecodeError, name: str) -> None:
    """Refuse a sample whose first lines are UTF-8 with CJK-size (3-byte+) characters and a later
    line is not: the file mixes encodings (decoding it all as GB18030 would garble the UTF-8 part)."""
    prefix = sample[: exc.start]
    complete = prefix[: prefix.rfind(b"\n") + 1]          # whole lines before the bad one
    if not complete or complete.isascii():
        return
    if not any(ord(ch) >= 0x800 for ch in complete.decode("utf-8", errors="ignore")):
        return
    line = prefix.count(b"\n") + 1
    raise LoadRefused(
        f"{name}: line {line:,} is not valid UTF-8 text but the lines before it are; the file mixes "
        f"encodings. Save it in one encoding, preferably UTF-8, and load it again.")


def _utf8_lines_in_gbk(sample: bytes, name: str) -> None:
    """Refuse a sample that is not UTF-8 as a whole but has, after a line that is not UTF-8, a line
    that is UTF-8 whose non-ASCII characters are all Chinese (at least three): GBK lines followed by
    UTF-8 ones. Random GBK text decodes that way in none of a million simulated lines of 1–8
    characters, so a GBK-only file is not refused."""
    lines = sample.split(b"\n")
    if len(sample) == SAMPLE_BYTES:
        lines = lines[:-1]                      # the last line may be cut short
    gbk_line = None
    for number, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            gbk_line = gbk_line or number
            continue
        wide = [ch for ch in text if ord(ch) > 127]
        if gbk_line and len(wide) >= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in wide):
            raise LoadRefused(
                f"{name}: line {number:,} is UTF-8 text but line {gbk_line:,} is not (GBK?); the file mixes "
                f"encodings. Save it in one encoding, preferably UTF-8, and load it again.")


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
            if encoding == "gb18030":
                _utf8_lines_in_gbk(sample, name)
            return encoding
        except UnicodeDecodeError as exc:
            if encoding == "utf-8":
                _mixed_utf8(sample, exc, name)
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


def _headers(text: str, delimiter: str, name: str = "file") -> list[str]:
    try:
        first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error as exc:
        raise LoadRefused(f"{name}: the first line is not a CSV header line ({exc}).") from exc
    return unique_headers(first)


def check_column_count(headers: list, name: str) -> None:
    """Refuse more than :data:`MAX_COLUMNS` columns (no event export needs more; each costs SQL)."""
    if len(headers) > MAX_COLUMNS:
        raise LoadRefused(
            f"{name}: the file has {len(headers):,} columns; at most {MAX_COLUMNS:,} are supported. "
            f"Drop the columns you do not need and load it again.")


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
    if not os.path.isfile(path):
        raise LoadRefused(f"{name}: not a file (a directory or a device); choose a CSV, Parquet or XLSX file.")
    if os.path.getsize(path) == 0:
        raise LoadRefused(f"{name}: the file is empty.")
    magic = _magic(path)
    if magic.startswith(b"PAR1"):
        return FileInfo(path, name, "parquet")
    if magic.startswith(b"PK\x03\x04"):
        _check_zip(path, name)
        return FileInfo(path, name, "xlsx")
    if magic.startswith(b"\x89PNG") or magic.startswith(b"\xff\xd8\xff") or magic.startswith(b"%PDF"):
        raise LoadRefused(f"{name}: this is an image or PDF, not a CSV, Parquet or XLSX file.")
    compression = "gzip" if magic.startswith(b"\x1f\x8b") else "none"
    sample = _read_sample(path, compression, name)
    if not sample.strip():
        raise LoadRefused(f"{name}: the file is empty.")
    if len(sample) == SAMPLE_BYTES and b"\n" not in sample and b"\r" not in sample:
        raise LoadRefused(f"{name}: the first line is longer than {SAMPLE_BYTES // (1 << 20)} MB, so it is not a "
                          f"CSV header line.")
    if compression == "gzip" and limit_bytes is None:   # a preview reads only the first rows
        _check_gzip(path, name)
    encoding = encoding or _detect_encoding(sample, name)
    text = sample.decode(encoding, errors="ignore")
    delimiter = _detect_delimiter(text, name)
    headers = _headers(text, delimiter, name)
    check_column_count(headers, name)
    info = FileInfo(path, name, "csv", compression, encoding, delimiter, headers)
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
