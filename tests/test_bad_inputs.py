"""Hostile and malformed files: every file of the corpus ``tests/data/bad/`` (written by
``tests/data/make_bad_corpus.py``; large cases built here in a temporary directory) has one
documented outcome (docs/metrics.md, "Hostile and malformed files"):

- a refusal: :class:`store.LoadRefused` whose message starts with the file name and states the
  reason, and every table of the database is exactly as before (a full dump compared);
- or a load: the exact counts of the :class:`store.LoadReport` (read, loaded, rejected,
  duplicates), the rejected lines with their reasons, and the stored values.

The database is never empty before a file is tried (two events, a spend row and an exchange rate
are loaded first), so "unchanged" is a real comparison.
"""
from __future__ import annotations

import datetime as dt
import json
import time
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

import store
from tests.data.make_bad_corpus import BAD_DIR, small_files, write_gzip_bomb, write_large

# every table of the schema, so that a table a later change adds is compared too
TABLES_SQL = "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY table_name"
T = dt.datetime


def dump(con) -> dict[str, list[tuple]]:
    """Every row of every table of the schema, sorted, as plain tuples (loaded_at columns included)."""
    return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for (t,) in con.execute(TABLES_SQL).fetchall()}


@pytest.fixture
def db():
    con = store.connect(":memory:")
    store.load_events(con, pd.DataFrame({
        "user_id": ["base1", "base2"], "event_name": ["signup", "purchase"],
        "event_time": ["2024-01-01 09:00:00", "2024-01-01 10:00:00"], "revenue": [None, 10.0]}))
    store.set_currency_rate(con, "USD", 7.0)
    store.load_spend(con, pd.DataFrame({"date": ["2023-12-31"], "channel": ["wechat"], "spend": ["5"]}))
    yield con
    con.close()


def bad(name: str) -> Path:
    return BAD_DIR / name


def refused(con, path: Path, *words: str, kind: str = "events", **kwargs) -> str:
    """Assert ``path`` is refused with a message naming it and containing ``words``; nothing written."""
    before = dump(con)
    loader = {"events": store.load_events, "spend": store.load_spend, "survey": store.load_survey}[kind]
    with pytest.raises(store.LoadRefused) as info:
        loader(con, path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path.name}: "), message
    for word in words:
        assert word in message, (word, message)
    assert dump(con) == before
    return message


def counts(report) -> tuple[int, int, int, int]:
    return report.rows_read, report.loaded, report.rejected, report.duplicates


def rejects(report) -> list[tuple[int, str]]:
    return [(int(line), reason) for line, reason in zip(report.rejected_samples["line"],
                                                        report.rejected_samples["reason"])]


def new_events(con, columns: str = "user_id, event_name, event_time") -> list[tuple]:
    return con.execute(f"SELECT {columns} FROM events WHERE user_id NOT LIKE 'base%' "
                       f"ORDER BY event_time, user_id").fetchall()


# --------------------------------------------------------------------------------------------
# The corpus is what the generator writes
# --------------------------------------------------------------------------------------------

def test_committed_corpus_matches_the_generator():
    expected = small_files()
    on_disk = {p.name: p.read_bytes() for p in BAD_DIR.iterdir()}
    assert on_disk == expected
    assert len(expected) >= 40


# --------------------------------------------------------------------------------------------
# Refused files: a message naming the file and the reason, and the database unchanged
# --------------------------------------------------------------------------------------------

REFUSED = [
    ("empty.csv", ["the file is empty"]),
    ("blank_lines_only.csv", ["the file is empty"]),
    ("header_only.csv", ["has a header (user_id, event_name, event_time) but no rows"]),
    ("binary_junk.csv", ["binary data (NUL bytes)"]),
    ("png_renamed.csv", ["image or PDF"]),
    ("pdf_renamed.csv", ["image or PDF"]),
    ("one_column.csv", ["only one column (user_id)"]),
    ("nul_in_cell.csv", ["binary data (NUL bytes)"]),
    ("utf16_no_bom.csv", ["binary data (NUL bytes)"]),         # UTF-16 needs its BOM
    ("latin1.csv", ["cannot be decoded as UTF-8 or GBK/GB18030"]),
    ("xlsx_events.csv", ["events must be CSV or Parquet"]),
    ("parquet_truncated.parquet", ["not a readable Parquet file"]),
    ("gzip_truncated.csv.gz", ["gzip-compressed but cannot be decompressed"]),
    ("mixed_encodings.csv", ["line 4 is not valid UTF-8 text", "mixes encodings"]),      # UTF-8, then GBK
    ("gbk_then_utf8.csv", ["line 4 is UTF-8 text but line 2 is not (GBK?)", "mixes encodings"]),
    ("missing_user_id.csv", ["no column for user_id (required for events)", "Columns found: event_name, event_time"]),
    ("missing_all_required.csv", ["no column for user_id, event_name, event_time", "Columns found: a, b, c"]),
]


@pytest.mark.parametrize("name, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_files_leave_the_database_unchanged(db, name, words):
    refused(db, bad(name), *words)


def test_xlsx_that_is_no_workbook_is_refused_as_spend(db):
    refused(db, bad("xlsx_events.csv"), "not a readable XLSX workbook", kind="spend")


def test_refused_file_through_the_command_line_exits_2(tmp_path):
    from store.__main__ import main
    assert main(["load", str(bad("png_renamed.csv")), "--db", str(tmp_path / "x.duckdb"), "--quiet"]) == 2


# --------------------------------------------------------------------------------------------
# Large hostile files (built here, never committed)
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def large(tmp_path_factory):
    return write_large(tmp_path_factory.mktemp("large"))


def test_ten_thousand_columns_refused_fast(db, large):
    started = time.perf_counter()
    refused(db, large["wide_10000_columns.csv"], "has 10,000 columns; at most 1,000 are supported")
    assert time.perf_counter() - started < 2


def test_one_thousand_columns_load(db, tmp_path):
    # the documented limit itself loads: 997 extra columns become properties
    cols = ["user_id", "event_name", "event_time"] + [f"c{i}" for i in range(3, 1000)]
    path = tmp_path / "wide_1000.csv"
    path.write_text(",".join(cols) + "\n" + ",".join(["u1", "click", "2024-01-01 00:00:00"] + ["7"] * 997) + "\n")
    report = store.load_events(db, path)
    assert counts(report) == (1, 1, 0, 0)
    props = json.loads(db.execute("SELECT properties FROM events WHERE user_id = 'u1'").fetchone()[0])
    assert len(props) == 997 and props["c3"] == "7" and props["c999"] == "7"


@pytest.mark.parametrize("name", ["single_line_5mb.csv", "single_line_5mb_commas.csv"])
def test_single_5mb_line_refused_fast(db, large, name):
    started = time.perf_counter()
    refused(db, large[name], "the first line is longer than 1 MB, so it is not a CSV header line")
    assert time.perf_counter() - started < 2


def test_five_mb_cell_loads_whole(db, large):
    report = store.load_events(db, large["cell_5mb.csv"])
    assert counts(report) == (2, 2, 0, 0)
    assert db.execute("SELECT user_id, length(page) FROM events WHERE user_id LIKE 'u%' ORDER BY 1").fetchall() == [
        ("u1", 5_000_000), ("u2", 1)]


def test_line_over_8mb_is_a_rejected_row(db, large):
    report = store.load_events(db, large["line_9mb.csv"])
    assert counts(report) == (3, 2, 1, 0)
    [(line, reason)] = rejects(report)
    assert line == 3 and reason.startswith("malformed line: line size over maximum")
    assert [r[0] for r in new_events(db)] == ["u1", "u3"]


def test_gzip_bomb_refused_quickly_with_bounded_memory(db, tmp_path):
    started = time.perf_counter()
    bomb = write_gzip_bomb(tmp_path / "bomb.csv.gz")              # ~5 MB expanding to 2 GiB
    assert bomb.stat().st_size < 8 << 20
    tracemalloc.start()
    try:
        refused(db, bomb, "decompression bomb", "OPSFUNNEL_MAX_GZIP_RATIO")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20                       # streamed in 4 MB pieces, never expanded in memory
    assert time.perf_counter() - started < 20


def test_gzip_within_the_ratio_loads(db, tmp_path):
    import gzip
    path = tmp_path / "ok.csv.gz"
    path.write_bytes(gzip.compress(bad("semicolon.csv").read_bytes()))
    assert counts(store.load_events(db, path)) == (2, 2, 0, 0)


# --------------------------------------------------------------------------------------------
# Delimiters, quotes, headers, line endings, encodings
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["semicolon.csv", "tab_named_csv.csv", "pipe.csv", "crlf.csv", "bom_at_start.csv",
                                  "utf16le_bom.csv", "utf16be_bom.csv"])
def test_other_delimiters_endings_and_encodings_load(db, name):
    text = {"semicolon.csv": ["u1", "u2"], "tab_named_csv.csv": ["u1"], "pipe.csv": ["u1"], "crlf.csv": ["u1", "u2"],
            "bom_at_start.csv": ["u1"], "utf16le_bom.csv": ["u1", "u2"], "utf16be_bom.csv": ["u1"]}[name]
    report = store.load_events(db, bad(name))
    assert counts(report) == (len(text), len(text), 0, 0)
    assert [r[0] for r in new_events(db)] == text
    if name.startswith("utf16"):
        assert [r[1] for r in new_events(db)] == ["点击", "购买"][: len(text)]


def test_mixed_delimiters_reject_the_lines_that_do_not_split(db):
    report = store.load_events(db, bad("mixed_delimiters.csv"))
    # header sniffed as comma; 'u2;view;…' and the tab line are one field each
    assert counts(report) == (4, 2, 2, 0)
    assert rejects(report) == [(3, "malformed line: missing columns (Expected Number of Columns: 3 Found: 1)"),
                               (5, "malformed line: missing columns (Expected Number of Columns: 3 Found: 1)")]
    assert [r[0] for r in new_events(db)] == ["u1", "u3"]


def test_ragged_rows_rejected_with_their_lines(db):
    report = store.load_events(db, bad("ragged_rows.csv"))
    assert counts(report) == (4, 2, 2, 0)
    assert rejects(report) == [(3, "malformed line: missing columns (Expected Number of Columns: 3 Found: 2)"),
                               (4, "malformed line: too many columns (Expected Number of Columns: 3 Found: 4)")]


def test_quoted_newlines_keep_the_cell_and_the_line_numbers(db):
    report = store.load_events(db, bad("quoted_newlines.csv"))
    # header = line 1, the 3-line record = lines 2-4, u2 = line 5, u3 = line 6
    assert counts(report) == (3, 2, 1, 0)
    assert rejects(report) == [(6, "event_time 'not a time' is not a date-time")]
    assert new_events(db, "user_id, event_name") == [("u1", "multi\nline\nname"), ("u2", "click")]


def test_unbalanced_quote_swallows_to_the_end_as_one_rejected_record(db):
    report = store.load_events(db, bad("unbalanced_quote.csv"))
    assert counts(report) == (2, 1, 1, 0)
    assert rejects(report) == [(3, "malformed line: unquoted value (Value with unterminated quote found.)")]
    raw = report.rejected_samples["raw"][0]
    assert raw == 'u2,"unclosed,2024-01-02 00:00:00\nu3,click,2024-01-03 00:00:00\n'
    assert [r[0] for r in new_events(db)] == ["u1"]


def test_quote_inside_an_unquoted_cell_is_kept(db):
    assert counts(store.load_events(db, bad("stray_quote_in_cell.csv"))) == (2, 2, 0, 0)
    assert new_events(db, "event_name") == [('say "hi"',), ("click",)]


def test_duplicate_and_blank_headers_become_properties(db):
    assert counts(store.load_events(db, bad("duplicate_headers.csv"))) == (1, 1, 0, 0)
    assert new_events(db, "page, properties") == [("/a", '{"page_2":"/b"}')]
    assert counts(store.load_events(db, bad("blank_headers.csv"))) == (1, 1, 0, 0)
    # blank header 2 and the space-only header 5 are named column_2 and column_5
    assert db.execute("SELECT properties FROM events WHERE user_id = 'u1' AND page IS NULL").fetchall() == [
        ('{"column_2":"x","column_5":"y"}',)]


def test_duplicate_required_header_uses_the_first(db):
    assert counts(store.load_events(db, bad("duplicate_required_header.csv"))) == (1, 1, 0, 0)
    assert new_events(db, "user_id, properties") == [("u1", '{"user_id_2":"u9"}')]


def test_bom_in_the_middle(db):
    # two files concatenated: the second header (after its BOM) is a rejected row; a BOM glued to
    # a user id is dropped, so u3 is u3
    report = store.load_events(db, bad("bom_in_middle.csv"))
    assert counts(report) == (4, 3, 1, 0)
    assert rejects(report) == [(3, "event_time 'event_time' is not a date-time")]
    assert [r[0] for r in new_events(db)] == ["u1", "u2", "u3"]


def test_blank_required_cells_rejected(db):
    report = store.load_events(db, bad("blank_required_cells.csv"))
    assert counts(report) == (4, 1, 3, 0)
    assert rejects(report) == [(2, "no user_id"), (3, "no event_name"), (4, "no event_time")]


# --------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------

def test_times_outside_1970_to_2100_rejected(db):
    report = store.load_events(db, bad("times_out_of_range.csv"))
    assert counts(report) == (8, 3, 5, 0)
    assert rejects(report) == [
        (2, "event_time '1900-01-01 00:00:00' is outside 1970–2100"),
        (3, "event_time '3000-01-01 00:00:00' is outside 1970–2100"),
        (4, "event_time '1969-12-31 23:59:59' is outside 1970–2100"),
        (7, "event_time '2101-01-01 00:00:00' is outside 1970–2100"),
        (8, "event_time '9999999999999' is outside 1970–2100"),       # epoch ms = year 2286
    ]
    assert new_events(db) == [("u4", "d", T(1970, 1, 1)), ("u8", "h", T(1970, 1, 1)),   # epoch 0 = the lower edge
                              ("u5", "e", T(2100, 12, 31, 23, 59, 59))]


def test_29_february_only_in_leap_years(db):
    report = store.load_events(db, bad("feb29.csv"))
    # 2023 and 2100 are not leap years (2100: divisible by 100, not by 400); 2000 and 2024 are
    assert counts(report) == (4, 2, 2, 0)
    assert rejects(report) == [(2, "event_time '2023-02-29 10:00:00' is not a date-time"),
                               (4, "event_time '2100-02-29 10:00:00' is not a date-time")]
    assert new_events(db) == [("u4", "d", T(2000, 2, 29, 10)), ("u2", "b", T(2024, 2, 29, 10))]


def test_dst_gap_shifts_forward_and_ambiguous_takes_the_first(db):
    report = store.load_events(db, bad("dst_berlin.csv"), source_timezone="Europe/Berlin")
    assert counts(report) == (5, 5, 0, 0)
    got = dict(db.execute("SELECT user_id, event_time FROM events WHERE user_id NOT LIKE 'base%'").fetchall())
    assert got == {
        "before_gap": T(2024, 3, 31, 0, 59),   # 01:59 CET (+1)
        "gap": T(2024, 3, 31, 1, 30),          # 02:30 does not exist: read at +1 = 03:30 CEST
        "after_gap": T(2024, 3, 31, 1, 0),     # 03:00 CEST (+2)
        "ambiguous": T(2024, 10, 27, 0, 30),   # 02:30 happens twice: the first, CEST (+2)
        "offset": T(2024, 10, 27, 1, 30),      # the second, when the offset says so (+1)
    }


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

def test_revenue_values(db):
    report = store.load_events(db, bad("revenue_values.csv"))
    assert counts(report) == (15, 8, 7, 0)
    assert rejects(report) == [(2, "revenue 'NaN' is not a finite number"), (3, "revenue 'nan' is not a finite number"),
                               (4, "revenue 'inf' is not a finite number"),
                               (5, "revenue '-Infinity' is not a finite number"),
                               (6, "revenue '1e309' is not a finite number"),
                               (14, "revenue 'abc' is not a finite number"),
                               (15, "revenue '-2+3' is not a finite number")]
    got = dict(db.execute("SELECT user_id, revenue FROM events WHERE user_id NOT LIKE 'base%'").fetchall())
    assert got == {"u5": 1e308, "u6": 1.5, "u7": 12.0, "u8": -12.5, "u9": 1234.5, "u10": 12.0, "u11": 3.0,
                   "u14": None}   # 1e308 finite; "1,5"; "¥12"; refund kept; "$1,234.50"; "12 USD"; "€3"; empty


# --------------------------------------------------------------------------------------------
# Values that look like code, numbers or markup are stored as text, verbatim
# --------------------------------------------------------------------------------------------

def test_leading_zero_ids_stay_text(db):
    assert counts(store.load_events(db, bad("leading_zero_ids.csv"))) == (3, 3, 0, 0)
    assert new_events(db, "event_id, user_id, session_id") == [
        ("000123", "007", "0042"), ("000124", "7", "042"), ("000125", "0007", "00000000000000000001")]
    assert db.execute("SELECT count(*) FROM users WHERE user_id IN ('007', '7', '0007')").fetchone()[0] == 3


def test_sql_looking_values_are_data(db):
    assert counts(store.load_events(db, bad("sql_like.csv"))) == (3, 3, 0, 0)
    assert new_events(db, "user_id, event_name") == [
        ("1; DELETE FROM users", "'; DROP TABLE events; --"), ("u2", "Robert'); DROP TABLE users;--"),
        ("u3", "OR 1=1 --")]                                   # cells are trimmed
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 5      # 2 base + 3
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 5
    assert db.execute("SELECT stage FROM stage_map WHERE event_name = ?",
                      ["'; DROP TABLE events; --"]).fetchone() == ("none",)


def test_formula_looking_values_are_stored_verbatim(db):
    assert counts(store.load_events(db, bad("formula_like.csv"))) == (3, 3, 0, 0)
    assert new_events(db, "user_id, event_name, page") == [
        ("u1", '=HYPERLINK("http://evil.example","x")', "=1+1"), ("u2", "@SUM(1)", "+cmd|' /C calc'!A0"),
        ("=A1", "-2+3", "@x")]


def test_html_in_event_names_is_stored_verbatim(db):
    assert counts(store.load_events(db, bad("html_names.csv"))) == (3, 3, 0, 0)
    assert new_events(db, "event_name") == [("<script>alert(1)</script>",), ("<b>bold</b>",),
                                            ('<img src=x onerror="alert(1)">',)]


def test_emoji_and_right_to_left_names_round_trip_byte_exact(db):
    assert counts(store.load_events(db, bad("emoji_rtl.csv"))) == (5, 5, 0, 0)
    want = [("u1", "🛒 add_to_cart"), ("u2", "שלום עולם"), ("u3", "مرحبا"), ("u4", "\u202ekcilc\u202c"),
            ("👩\u200d👩\u200d👧", "👍🏽 like")]
    got = new_events(db, "user_id, event_name")
    assert [(u.encode(), e.encode()) for u, e in got] == [(u.encode(), e.encode()) for u, e in want]
    assert db.execute("SELECT count(*) FROM stage_map WHERE event_name = '👍🏽 like'").fetchone()[0] == 1


# --------------------------------------------------------------------------------------------
# Spend: a second upload overlapping the dates of the first
# --------------------------------------------------------------------------------------------

def test_overlapping_spend_upload_replaces_the_shared_keys(db):
    first = store.load_spend(db, bad("spend_first.csv"))
    assert counts(first) == (4, 4, 0, 0) and first.replaced == 0
    second = store.load_spend(db, bad("spend_overlap.csv"))
    # only (2024-01-03, wechat, spring) is in both files: replaced by the second upload's 125
    assert counts(second) == (3, 3, 0, 0) and second.replaced == 1
    got = db.execute("SELECT CAST(date AS VARCHAR), channel, campaign, spend, source_file FROM spend "
                     "WHERE date >= '2024-01-01' ORDER BY date, channel").fetchall()
    assert got == [("2024-01-01", "wechat", "spring", 100.0, "spend_first.csv"),
                   ("2024-01-02", "wechat", "spring", 110.0, "spend_first.csv"),
                   ("2024-01-03", "douyin", "", 50.0, "spend_first.csv"),
                   ("2024-01-03", "wechat", "spring", 125.0, "spend_overlap.csv"),
                   ("2024-01-04", "wechat", "spring", 130.0, "spend_overlap.csv"),
                   ("2024-01-05", "wechat", "spring", 140.0, "spend_overlap.csv")]


def test_preview_of_a_gzip_bomb_reads_only_its_first_rows(tmp_path):
    # a preview never streams the whole file: DuckDB stops after the first rows
    bomb = write_gzip_bomb(tmp_path / "bomb.csv.gz")
    started = time.perf_counter()
    mapping, frame = store.preview(bomb, "events")
    assert mapping == {"user_id": "user_id", "event_name": "event_name", "event_time": "event_time"}
    assert len(frame) == 20 and set(frame["user_id"]) == {"u1"}
    assert time.perf_counter() - started < 10


def test_zip_bomb_spend_workbook_refused(db, tmp_path):
    import zipfile
    path = tmp_path / "spend.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (160 << 20))     # 160 MiB of zeros, ~160 KB stored
    assert path.stat().st_size < 1 << 20
    # allowed: max(200 x ~0.16 MB, 100 MB) = 100 MB < 168 MB declared
    refused(db, path, "decompression bomb", kind="spend")


def test_dataframe_with_too_many_columns_refused(db):
    df = pd.DataFrame({"user_id": ["u1"], "event_name": ["a"], "event_time": ["2024-01-01"]}
                      | {f"c{i}": ["x"] for i in range(1_000)})
    before = dump(db)
    with pytest.raises(store.LoadRefused, match=r"^DataFrame: the file has 1,003 columns; at most 1,000"):
        store.load_events(db, df)
    assert dump(db) == before


def test_headers_that_look_like_code_are_plain_property_names(db):
    report = store.load_events(db, bad("hostile_headers.csv"))
    assert counts(report) == (2, 1, 1, 0)
    assert rejects(report) == [(3, "event_time 'nope' is not a date-time")]
    assert json.loads(report.rejected_samples["raw"][0]) == {
        "user_id": "u2", "event_name": "click", "event_time": "nope", 'a"b': "1",
        "'); DROP TABLE events;--": "2", "{x}": "3", "%s": "4", '"': "5"}
    assert json.loads(db.execute("SELECT properties FROM events WHERE user_id = 'u1'").fetchone()[0]) == {
        'a"b': "1", "'); DROP TABLE events;--": "2", "{x}": "3", "%s": "4", '"': "5"}
    assert store.inspect_headers(bad("hostile_headers.csv")) == [
        "user_id", "event_name", "event_time", 'a"b', "'); DROP TABLE events;--", "{x}", "%s", '"']


def test_file_name_with_quotes_and_sql_loads_under_its_name(db, tmp_path):
    path = tmp_path / "o'brien \"x\"; DROP TABLE events;--.csv"
    path.write_bytes(bad("semicolon.csv").read_bytes())
    report = store.load_events(db, path)
    assert counts(report) == (2, 2, 0, 0) and report.source == path.name
    assert db.execute("SELECT DISTINCT source_file FROM events WHERE user_id = 'u1'").fetchall() == [(path.name,)]


def test_a_directory_is_refused(db, tmp_path):
    folder = tmp_path / "exports.csv"
    folder.mkdir()
    refused(db, folder, "not a file (a directory or a device)")
