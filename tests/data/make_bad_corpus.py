"""Write the hostile-file corpus used by ``tests/test_bad_inputs.py``.

    python tests/data/make_bad_corpus.py            # (re)writes tests/data/bad/ (small files, committed)

Every file is written byte-exactly from this script (no randomness without a fixed seed), so the
committed files and a fresh run are identical. Large files (10,000 columns, a 5 MB line, a gzip
bomb) are not committed: the tests build them in a temporary directory with :func:`write_large`
and :func:`write_gzip_bomb`.
"""
from __future__ import annotations

import gzip
import io
import random
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAD_DIR = HERE / "bad"
HEADER = "user_id,event_name,event_time\n"


def _rows(*rows: str) -> str:
    return HEADER + "".join(r + "\n" for r in rows)


def small_files() -> dict[str, bytes]:
    """``{file name: exact bytes}`` of the committed corpus."""
    rnd = random.Random(20261121)
    f: dict[str, bytes] = {}
    u = lambda s: s.encode("utf-8")  # noqa: E731

    # --- files that are not a usable table at all -------------------------------------------
    f["empty.csv"] = b""
    f["blank_lines_only.csv"] = b"\n  \n\t\n\r\n"
    f["header_only.csv"] = u(HEADER)
    f["binary_junk.csv"] = bytes(rnd.randrange(256) for _ in range(4096))
    f["png_renamed.csv"] = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
                            + bytes(rnd.randrange(256) for _ in range(200)))
    f["pdf_renamed.csv"] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"
    f["one_column.csv"] = u("user_id\nu1\nu2\n")
    f["nul_in_cell.csv"] = u(HEADER) + b"u1,cl\x00ick,2024-01-01 00:00:00\n"
    f["utf16_no_bom.csv"] = _rows("u1,click,2024-01-01 00:00:00").encode("utf-16-le")
    f["latin1.csv"] = "user_id,event_name,event_time\nu1,café,2024-01-01 00:00:00\n".encode("latin-1")
    f["xlsx_events.csv"] = _xlsx_bytes()
    f["parquet_truncated.parquet"] = b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00"
    f["gzip_truncated.csv.gz"] = gzip.compress(u(_rows(*[f"u{i},click,2024-01-01 00:00:{i % 60:02d}"
                                                          for i in range(2000)])), mtime=0)[:300]
    f["gbk_then_utf8.csv"] = _rows("u1,点击,2024-01-01 00:00:00", "u2,购买,2024-01-02 00:00:00").encode("gb18030") + \
        u("u3,注册成功,2024-01-03 00:00:00\n")
    f["mixed_encodings.csv"] = u(_rows("u1,点击,2024-01-01 00:00:00", "u2,购买,2024-01-02 00:00:00")) + \
        "u3,注册,2024-01-03 00:00:00\n".encode("gb18030")

    # --- missing columns ----------------------------------------------------------------------
    f["missing_user_id.csv"] = u("event_name,event_time\nclick,2024-01-01 00:00:00\n")
    f["missing_all_required.csv"] = u("a,b,c\n1,2,3\n")

    # --- delimiters, quoting, headers, line endings ------------------------------------------
    f["semicolon.csv"] = u("user_id;event_name;event_time\nu1;click;2024-01-01 00:00:00\nu2;view;2024-01-02 00:00:00\n")
    f["tab_named_csv.csv"] = u("user_id\tevent_name\tevent_time\nu1\tclick\t2024-01-01 00:00:00\n")
    f["pipe.csv"] = u("user_id|event_name|event_time\nu1|click|2024-01-01 00:00:00\n")
    f["mixed_delimiters.csv"] = u(_rows("u1,click,2024-01-01 00:00:00", "u2;view;2024-01-02 00:00:00",
                                        "u3,buy,2024-01-03 00:00:00", "u4\tview\t2024-01-04 00:00:00"))
    f["quoted_newlines.csv"] = u(HEADER + 'u1,"multi\nline\nname",2024-01-01 00:00:00\n'
                                 + "u2,click,2024-01-02 00:00:00\n" + "u3,click,not a time\n")
    f["unbalanced_quote.csv"] = u(_rows("u1,click,2024-01-01 00:00:00", 'u2,"unclosed,2024-01-02 00:00:00',
                                        "u3,click,2024-01-03 00:00:00"))
    f["stray_quote_in_cell.csv"] = u(_rows('u1,say "hi",2024-01-01 00:00:00', "u2,click,2024-01-02 00:00:00"))
    f["ragged_rows.csv"] = u(_rows("u1,click,2024-01-01 00:00:00", "u2,click", "u3,click,2024-01-03 00:00:00,extra",
                                   "u4,click,2024-01-04 00:00:00"))
    f["duplicate_headers.csv"] = u("user_id,event_name,event_time,page,page\n"
                                   "u1,click,2024-01-01 00:00:00,/a,/b\n")
    f["duplicate_required_header.csv"] = u("user_id,user_id,event_name,event_time\n"
                                           "u1,u9,click,2024-01-01 00:00:00\n")
    f["blank_headers.csv"] = u("user_id,,event_name,event_time, \nu1,x,click,2024-01-01 00:00:00,y\n")
    f["crlf.csv"] = u(HEADER.replace("\n", "\r\n") + "u1,click,2024-01-01 00:00:00\r\nu2,view,2024-01-02 00:00:00\r\n")
    f["bom_at_start.csv"] = b"\xef\xbb\xbf" + u(_rows("u1,click,2024-01-01 00:00:00"))
    # two files concatenated: the second one's BOM and header land in the middle; a BOM also
    # glued to a user id
    f["bom_in_middle.csv"] = b"\xef\xbb\xbf" + u(_rows("u1,click,2024-01-01 00:00:00")) + b"\xef\xbb\xbf" + \
        u(_rows("u2,click,2024-01-02 00:00:00")) + b"\xef\xbb\xbfu3,click,2024-01-03 00:00:00\n"
    f["utf16le_bom.csv"] = b"\xff\xfe" + _rows("u1,点击,2024-01-01 00:00:00", "u2,购买,2024-01-02 00:00:00").encode("utf-16-le")
    f["utf16be_bom.csv"] = b"\xfe\xff" + _rows("u1,点击,2024-01-01 00:00:00").encode("utf-16-be")
    f["hostile_headers.csv"] = u('user_id,event_name,event_time,"a""b","\'); DROP TABLE events;--",{x},%s,""""\n'
                                 "u1,click,2024-01-01 00:00:00,1,2,3,4,5\nu2,click,nope,1,2,3,4,5\n")
    f["blank_required_cells.csv"] = u(_rows(" ,click,2024-01-01 00:00:00", "u2,  ,2024-01-01 00:00:00",
                                            "u3,click,", "u4,click,2024-01-01 00:00:00"))

    # --- times -------------------------------------------------------------------------------
    f["times_out_of_range.csv"] = u(_rows(
        "u1,a,1900-01-01 00:00:00", "u2,b,3000-01-01 00:00:00", "u3,c,1969-12-31 23:59:59",
        "u4,d,1970-01-01 00:00:00", "u5,e,2100-12-31 23:59:59", "u6,f,2101-01-01 00:00:00",
        "u7,g,9999999999999", "u8,h,0000000000"))
    f["feb29.csv"] = u(_rows("u1,a,2023-02-29 10:00:00", "u2,b,2024-02-29 10:00:00", "u3,c,2100-02-29 10:00:00",
                             "u4,d,2000-02-29 10:00:00"))
    # Europe/Berlin: 2024-03-31 02:00 -> 03:00 (gap), 2024-10-27 03:00 -> 02:00 (02:xx twice)
    f["dst_berlin.csv"] = u(_rows("gap,a,2024-03-31 02:30:00", "before_gap,a,2024-03-31 01:59:00",
                                  "after_gap,a,2024-03-31 03:00:00", "ambiguous,a,2024-10-27 02:30:00",
                                  "offset,a,2024-10-27T02:30:00+01:00"))

    # --- numbers -----------------------------------------------------------------------------
    f["revenue_values.csv"] = u("user_id,event_name,event_time,revenue\n" + "".join(
        f"u{i},pay,2024-01-01 00:00:{i:02d},{v}\n" for i, v in enumerate([
            "NaN", "nan", "inf", "-Infinity", "1e309", "1e308", '"1,5"', "¥12", "-12.5", '"$1,234.50"',
            "12 USD", "€3", "abc", "-2+3", ""])))

    # --- values that look like something else ----------------------------------------------
    f["leading_zero_ids.csv"] = u("event_id,user_id,session_id,event_name,event_time\n"
                                  "000123,007,0042,click,2024-01-01 00:00:00\n"
                                  "000124,7,042,click,2024-01-01 00:00:01\n"
                                  "000125,0007,00000000000000000001,click,2024-01-01 00:00:02\n")
    f["sql_like.csv"] = u(HEADER + "\"1; DELETE FROM users\",\"'; DROP TABLE events; --\",2024-01-01 00:00:00\n"
                          + "u2,\"Robert'); DROP TABLE users;--\",2024-01-01 00:00:01\n"
                          + "u3,\" OR 1=1 --\",2024-01-01 00:00:02\n")
    f["formula_like.csv"] = u("user_id,event_name,event_time,page\n"
                              "u1,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",2024-01-01 00:00:00,=1+1\n"
                              "u2,@SUM(1),2024-01-01 00:00:01,+cmd|' /C calc'!A0\n"
                              "=A1,-2+3,2024-01-01 00:00:02,@x\n")
    f["html_names.csv"] = u(HEADER + "u1,<script>alert(1)</script>,2024-01-01 00:00:00\n"
                            + "u2,<b>bold</b>,2024-01-01 00:00:01\n"
                            + "u3,\"<img src=x onerror=\"\"alert(1)\"\">\",2024-01-01 00:00:02\n")
    f["emoji_rtl.csv"] = u(HEADER + "u1,🛒 add_to_cart,2024-01-01 00:00:00\n"
                           + "u2,שלום עולם,2024-01-01 00:00:01\n"
                           + "u3,مرحبا,2024-01-01 00:00:02\n"
                           + "u4,\u202ekcilc\u202c,2024-01-01 00:00:03\n"
                           + "👩\u200d👩\u200d👧,👍🏽 like,2024-01-01 00:00:04\n")

    # --- spend: a second upload whose dates overlap the first --------------------------------
    f["spend_first.csv"] = u("date,channel,campaign,spend\n2024-01-01,wechat,spring,100\n"
                             "2024-01-02,wechat,spring,110\n2024-01-03,wechat,spring,120\n2024-01-03,douyin,,50\n")
    f["spend_overlap.csv"] = u("date,channel,campaign,spend\n2024-01-03,wechat,spring,125\n"
                               "2024-01-04,wechat,spring,130\n2024-01-05,wechat,spring,140\n")
    return f


def _xlsx_bytes() -> bytes:
    """A minimal XLSX-like zip (the loader refuses events in XLSX before opening the workbook)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("[Content_Types].xml", date_time=(2024, 1, 1, 0, 0, 0))
        z.writestr(info, "<Types/>")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Large files, built by the tests in a temporary directory
# --------------------------------------------------------------------------------------------

def write_large(directory: Path) -> dict[str, Path]:
    """Write the large cases into ``directory``; return ``{name: path}``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    cols = ["user_id", "event_name", "event_time"] + [f"c{i}" for i in range(3, 10_000)]
    p = directory / "wide_10000_columns.csv"
    p.write_text(",".join(cols) + "\n" + ",".join(["u1", "click", "2024-01-01 00:00:00"] + ["1"] * 9997) + "\n")
    out[p.name] = p
    p = directory / "single_line_5mb.csv"          # one 5 MB line, no delimiter, no newline
    p.write_bytes(b"x" * 5_000_000)
    out[p.name] = p
    p = directory / "single_line_5mb_commas.csv"   # one 5 MB line of commas: ~1.7 million columns
    p.write_bytes(b"ab," * 1_666_666 + b"ab")
    out[p.name] = p
    p = directory / "cell_5mb.csv"                 # a 5 MB page cell in an ordinary row
    p.write_bytes(b"user_id,event_name,event_time,page\nu1,click,2024-01-01 00:00:00," + b"p" * 5_000_000
                  + b"\nu2,click,2024-01-01 00:00:01,/\n")
    out[p.name] = p
    p = directory / "line_9mb.csv"                 # a row over the 8 MB line limit between two good rows
    p.write_bytes(b"user_id,event_name,event_time,page\nu1,click,2024-01-01 00:00:00,/\nu2,click,"
                  b"2024-01-01 00:00:01," + b"p" * 9_000_000 + b"\nu3,click,2024-01-01 00:00:02,/\n")
    out[p.name] = p
    return out


def write_gzip_bomb(path: Path, expanded_bytes: int = 2 << 30) -> Path:
    """A valid multi-member gzip file of ~2 MB that expands to ``expanded_bytes`` of CSV rows.

    One 16 MiB member of repeated rows is compressed once and repeated (concatenated gzip
    members are one valid stream), so building it takes well under a second. Its gzip trailer
    states only the last member's size (16 MiB): the trailer cannot be trusted.
    """
    line = b"u1,click,2024-01-01 00:00:00\n"
    block = line * ((16 << 20) // len(line))
    member = gzip.compress(block, compresslevel=9, mtime=0)
    head = gzip.compress(HEADER.encode(), mtime=0)
    with open(path, "wb") as out:
        out.write(head)
        for _ in range(max(1, expanded_bytes // len(block))):
            out.write(member)
    return path


def main(argv: list[str]) -> int:
    BAD_DIR.mkdir(parents=True, exist_ok=True)
    for name, data in small_files().items():
        (BAD_DIR / name).write_bytes(data)
    print(f"wrote {len(small_files())} files to {BAD_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
