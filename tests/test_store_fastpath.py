"""The event load's cheaper expressions give the same values as the straightforward ones they
replace, and line numbers are still right when they are only worked out for rejected rows.

The reference expressions below are the plain forms (every cell copied by ``replace`` before
``trim``, every epoch and offset regex tried in turn, ``AT TIME ZONE`` for offsets, the cleaning
regexes for every revenue cell, ``json_merge_patch`` for properties); the loader must agree with
them on awkward input.
"""
from __future__ import annotations

import json

import duckdb
import pytest

import store
from store import load as load_module
from store import parse

# --------------------------------------------------------------------------------------------
# Reference expressions
# --------------------------------------------------------------------------------------------


def ref_text(col: str) -> str:
    return f"NULLIF(trim(replace(CAST({col} AS VARCHAR), chr(65279), '')), '')"


def ref_timestamp(raw: str, tz: str) -> str:
    formats = "[" + ", ".join(f"'{f}'" for f in parse.NAIVE_FORMATS) + "]"
    naive = f"coalesce(TRY_CAST({raw} AS TIMESTAMP), try_strptime({raw}, {formats}))"
    local = naive if tz == "UTC" else parse.local_to_utc_sql(naive, tz)
    return f"""(CASE
        WHEN regexp_full_match({raw}, '{parse.EPOCH_S_RE}')
            THEN TRY_CAST(to_timestamp(TRY_CAST({raw} AS DOUBLE)) AT TIME ZONE 'UTC' AS TIMESTAMP)
        WHEN regexp_full_match({raw}, '{parse.EPOCH_MS_RE}') THEN epoch_ms(TRY_CAST({raw} AS BIGINT))
        WHEN regexp_full_match({raw}, '{parse.OFFSET_RE}')
            THEN TRY_CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)
        ELSE {local}
    END)"""


def ref_number(raw: str) -> str:
    c = f"regexp_replace({raw}, '[\\s¥$€£￥]|CNY|RMB|USD|EUR', '', 'g')"
    cleaned = (f"(CASE WHEN regexp_full_match({c}, '[-+]?\\d{{1,3}}(,\\d{{3}})+(\\.\\d+)?') THEN replace({c}, ',', '') "
               f"WHEN regexp_full_match({c}, '[-+]?\\d+,\\d+') THEN replace({c}, ',', '.') ELSE {c} END)")
    value = f"TRY_CAST({cleaned} AS DOUBLE)"
    return f"(CASE WHEN isfinite({value}) THEN {value} END)"


TIMES = ["1700000000", "1700000000.5", "1700000000123", "170000000", "12345678901234", "-1700000000",
         "1700000000-", "2024-01-01T00:00:00+08:00", "2024-01-01 00:00:00Z", "2024-01-01T00:00z",
         "2024-01-01T9:00:00.123456-0500", "2024-01-01T00:00:00+99:99", "2024-02-30T00:00:00Z",
         "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2024-03-31 02:30:00", "2024-10-27 02:30:00",
         "2024-11-03 01:30:00", "2024/01/02 03:04:05", "2024/01/02", "31/12/2024 10:00:00", "2024.01.02 03:04:05",
         "2024-01-01", "20240101", "1e9", "abc", "", "--", "2024-01-01T00:00:00 +08", "1.5e400", "１７００００００００"]
NUMBERS = ["12", " 12 ", "12\t", "\x0b12", "1_000", " 1_0 ", "1,5", "1,234.5", "1.000,5", "¥12", "$ 1,234", "12USD",
           "RMB 3", "1e3", ".5", "5.", "+5", "-0", "inf", "-Infinity", "nan", "1.5e400", "1 000", "0x10", "abc", ""]


@pytest.fixture
def mem():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    yield con
    con.close()


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai"])
def test_timestamp_sql_agrees_with_the_reference(mem, tz):
    mem.execute("CREATE TABLE t AS SELECT unnest(?) AS _t", [TIMES])
    differ = mem.execute(f"""SELECT _t, a, b FROM (SELECT _t, {ref_timestamp('_t', tz)} AS a,
                             {parse.timestamp_sql('_t', tz)} AS b FROM t) WHERE a IS DISTINCT FROM b""").fetchall()
    assert differ == []
    # and the cases that matter give the values worked out by hand
    got = dict(mem.execute(f"SELECT _t, {parse.timestamp_sql('_t', 'UTC')} FROM t").fetchall())
    assert str(got["2024-01-01T00:00:00+08:00"]) == "2023-12-31 16:00:00"
    assert str(got["2024-01-01T9:00:00.123456-0500"]) == "2024-01-01 14:00:00.123456"
    assert str(got["1700000000123"]) == "2023-11-14 22:13:20.123000"
    assert got["1700000000-"] is None and got["2024-02-30T00:00:00Z"] is None


def test_number_sql_agrees_with_the_reference(mem):
    mem.execute("CREATE TABLE t AS SELECT unnest(?) AS _r", [NUMBERS])
    differ = mem.execute(f"""SELECT _r, a, b FROM (SELECT _r, {ref_number('_r')} AS a, {parse.number_sql('_r')} AS b
                             FROM t) WHERE a IS DISTINCT FROM b""").fetchall()
    assert differ == []
    got = dict(mem.execute(f"SELECT _r, {parse.number_sql('_r')} FROM t").fetchall())
    assert (got[" 12 "], got["1,5"], got["1,234.5"], got["$ 1,234"], got["1_000"]) == (12.0, 1.5, 1234.5, 1234.0, 1000.0)
    assert got["1 000"] == 1000.0 and got["inf"] is None and got["nan"] is None and got["0x10"] is None


CELLS = ['plain', ' padded ', '\ufeffbom', 'in\ufeffside', '\ufeff', '   ', '', None, 'quote"d', 'back\\slash',
         'new\nline', 'tab\t', 'ctrl\x01\x1f\x7f', '中文', '😀 emoji', "it's", '{"a": 1}', '\u2028sep', 'a/b', '\u3000wide\u3000']


def test_text_trims_exactly_what_trim_does(mem):
    """``_text`` skips ``trim`` for ASCII cells with no space at either end: that relies on ``trim`` removing
    no ASCII character but the space. Every ASCII character and every character ``trim`` removes, at the
    start, the end, both, alone and around ASCII and CJK text, is checked against the plain form."""
    edges = [chr(i) for i in range(1, 128)] + [chr(i) for i in (0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F,
                                                                  0x205F, 0x3000, 0x85, 0x200B, 0x2028, 0xFEFF)]
    cells = [c for e in edges for c in (e, e + e, e + "ab", "ab" + e, e + "ab" + e, e + "中" + e, "a" + e + "b")]
    mem.execute("CREATE TABLE t (c VARCHAR)")
    mem.executemany("INSERT INTO t VALUES (?)", [[c] for c in cells])
    differ = mem.execute(f"SELECT c FROM t WHERE {ref_text('c')} IS DISTINCT FROM {load_module._text('c')}").fetchall()
    assert differ == []
    # the ASCII characters trim removes: the space alone (else the shortcut above would skip them)
    assert [i for i in range(1, 128) if mem.execute("SELECT trim(chr(?) || 'a' || chr(?))", [i, i]).fetchone()[0]
            == "a"] == [32]


def test_text_and_properties_agree_with_the_reference(mem):
    headers = ["k1", 'we"ird', "o'k", "中文", "tab\tkey"]
    rows = [[CELLS[(i * 7 + j * 3) % len(CELLS)] for j in range(len(headers))] for i in range(len(CELLS) * 3)]
    cols = ", ".join(f"{store.quote_ident(h)} VARCHAR" for h in headers)
    mem.execute(f"CREATE TABLE t ({cols})")
    mem.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in headers)})", rows)
    for h in headers:
        q = store.quote_ident(h)
        assert mem.execute(f"SELECT count(*) FROM t WHERE {ref_text(q)} IS DISTINCT FROM "
                           f"{load_module._text(h)}").fetchone()[0] == 0
    pairs = ", ".join(f"'{h.replace(chr(39), chr(39) * 2)}', {ref_text(store.quote_ident(h))}" for h in headers)
    ref = f"NULLIF(CAST(json_merge_patch('{{}}', json_object({pairs})) AS VARCHAR), '{{}}')"
    got = mem.execute(f"SELECT {ref}, {load_module._object_sql(headers)} FROM t").fetchall()
    assert [a for a, b in got if a != b] == [] and len(got) == len(rows)
    assert sum(a is None for a, _ in got) == sum(b is None for _, b in got)
    one = mem.execute(f"SELECT {load_module._object_sql(['x', 'y'])} FROM (SELECT ' a\"b ' AS x, NULL AS y)").fetchone()[0]
    assert json.loads(one) == {"x": 'a"b'}


# --------------------------------------------------------------------------------------------
# Line numbers, counted only when a row is rejected
# --------------------------------------------------------------------------------------------

def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


MULTILINE = ('user_id,event,time,note\n'
             'u2,a,2024-01-01 00:00,"x",extra\n'           # line 2: malformed (too many columns)
             'u1,a,2024-01-01 00:00,"one\ntwo"\n'          # lines 3-4
             'u3,a,2024-01-01 00:00,"p\nq\nr"\n'           # lines 5-7
             'u4,a,never,x\n'                              # line 8: rejected
             ',a,2024-01-02 00:00,x\n'                     # line 9: rejected
             'u5,b,2024-01-03 00:00,"s\nt"\n'              # lines 10-11
             'u6,a,2024-13-01,y\n')                        # line 12: rejected


def test_lines_of_rejected_rows_after_quoted_line_breaks_and_malformed_lines(con, tmp_path):
    report = store.load_events(con, write(tmp_path, "m.csv", MULTILINE))
    assert (report.rows_read, report.loaded, report.rejected) == (7, 3, 4)
    assert con.execute("SELECT line, reason FROM rejected_rows ORDER BY line").fetchall() == [
        (2, "malformed line: too many columns (Expected Number of Columns: 4 Found: 5)"),
        (8, "event_time 'never' is not a date-time"),
        (9, "no user_id"),
        (12, "event_time '2024-13-01' is not a date-time"),
    ]
    assert list(report.rejected_samples["line"]) == [2, 8, 9, 12]
    # the same file again: nothing new, the same lines, and no work table left behind
    again = store.load_events(con, write(tmp_path, "m.csv", MULTILINE))
    assert (again.loaded, again.duplicates, again.rejected) == (0, 3, 4)
    assert list(again.rejected_samples["line"]) == [2, 8, 9, 12]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0


def test_preview_lines_after_quoted_line_breaks(tmp_path):
    _, frame = store.preview(write(tmp_path, "m.csv", MULTILINE), "events", rows=20)
    assert list(frame["line"]) == [2, 3, 5, 8, 9, 10, 12]
    assert list(frame["reason"].isna()) == [False, True, True, False, False, True, False]


def test_a_clean_file_reads_the_file_once(con, tmp_path, monkeypatch):
    counted = []
    real = load_module._newline_rows
    monkeypatch.setattr(load_module, "_newline_rows", lambda c, s: counted.append(1) or real(c, s))
    report = store.load_events(con, write(tmp_path, "ok.csv", 'user_id,event,time,note\nu1,a,2024-01-01,"x\ny"\n'))
    assert (report.loaded, report.rejected, counted) == (1, 0, [])
    report = store.load_events(con, write(tmp_path, "bad.csv", 'user_id,event,time,note\nu1,a,2024-01-01,"x\ny"\n'
                                                               'u2,a,later,z\n'))
    assert (report.rejected, counted) == (1, [1])
    assert con.execute("SELECT line FROM rejected_rows").fetchall() == [(4,)]
