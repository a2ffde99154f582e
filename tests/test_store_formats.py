"""File formats the store reads: delimiters, encodings, containers, header aliases, time forms, and
the files it refuses. Every fixture is written into ``tmp_path``; expected values are worked out
by hand in the comments."""
from __future__ import annotations

import datetime as dt
import gzip
import json

import pandas as pd
import pytest

import store

UTC = dt.datetime  # stored timestamps are naive UTC datetimes


def write(tmp_path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def events(con) -> list[tuple]:
    return con.execute(
        "SELECT user_id, event_name, event_time, channel, campaign, page, revenue, properties "
        "FROM events ORDER BY user_id, event_time").fetchall()


# --------------------------------------------------------------------------------------------
# Delimiters, encodings, containers
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(con, tmp_path, delim):
    rows = ["user_id,event,time,channel", "u1,signup,2024-01-01 10:00:00,WeChat ", "u2,view,2024-01-02 11:30:00,"]
    path = write(tmp_path, "e.csv", "\n".join(r.replace(",", delim) for r in rows) + "\n")
    report = store.load_events(con, path)
    assert (report.rows_read, report.loaded, report.rejected, report.duplicates) == (2, 2, 0, 0)
    # channel 'WeChat ' is stored as the key 'wechat'; an empty cell is NULL
    assert events(con) == [
        ("u1", "signup", UTC(2024, 1, 1, 10), "wechat", None, None, None, None),
        ("u2", "view", UTC(2024, 1, 2, 11, 30), None, None, None, None, None),
    ]


def test_gbk_semicolon_chinese_headers_load_without_mapping(con, tmp_path):
    # the acceptance case: GBK, ';', Chinese headers for every canonical column
    text = ("用户ID;事件;时间;渠道;活动;页面;金额;城市\n"
            "张三;注册;2024/01/05 08:00;微信;春节活动;/首页;;北京\n"
            "张三;购买;2024/01/05 09:15:30;;;/支付;￥1,234.50;北京\n")
    path = write(tmp_path, "导出.csv", text, "gbk")
    report = store.load_events(con, path)
    assert report.mapping == {"user_id": "用户ID", "event_name": "事件", "event_time": "时间", "channel": "渠道",
                              "campaign": "活动", "page": "页面", "revenue": "金额"}
    assert (report.rows_read, report.loaded, report.rejected) == (2, 2, 0)
    # ￥1,234.50 -> 1234.5 (currency sign and thousands separator dropped); 城市 -> properties
    assert events(con) == [
        ("张三", "注册", UTC(2024, 1, 5, 8), "微信", "春节活动", "/首页", None, '{"城市":"北京"}'),
        ("张三", "购买", UTC(2024, 1, 5, 9, 15, 30), None, None, "/支付", 1234.5, '{"城市":"北京"}'),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_encodings_detected_without_being_told(con, tmp_path, encoding):
    text = "uid,event_name,timestamp,utm_source\n李四,访问,2024-02-01T00:00:00Z,抖音\n"
    path = write(tmp_path, "e.csv", text, encoding)
    report = store.load_events(con, path)
    assert report.loaded == 1
    # the BOM is not part of the first header: 'uid' still maps to user_id
    assert report.mapping["user_id"] == "uid"
    assert events(con) == [("李四", "访问", UTC(2024, 2, 1), "抖音", None, None, None, None)]


def test_gzip_csv(con, tmp_path):
    path = tmp_path / "e.csv.gz"
    path.write_bytes(gzip.compress(b"distinct_id,event,ts\nu1,a,2024-01-01 00:00:01\nu2,b,2024-01-01 00:00:02\n"))
    report = store.load_events(con, str(path))
    assert (report.rows_read, report.loaded) == (2, 2)
    assert [r[:3] for r in events(con)] == [("u1", "a", UTC(2024, 1, 1, 0, 0, 1)), ("u2", "b", UTC(2024, 1, 1, 0, 0, 2))]


def test_parquet_events(con, tmp_path):
    path = tmp_path / "e.parquet"
    pd.DataFrame({"user_id": ["u1", "u2"], "event_name": ["a", "b"],
                  "event_time": ["2024-01-01T08:00:00+08:00", "2024-01-01 01:00:00"],
                  "amount": ["9.5", None], "plan": ["pro", None]}).to_parquet(path)
    report = store.load_events(con, str(path))
    assert (report.rows_read, report.loaded, report.rejected) == (2, 2, 0)
    # 08:00+08:00 = 00:00 UTC; 'amount' is an alias of revenue; 'plan' becomes a property
    assert events(con) == [("u1", "a", UTC(2024, 1, 1), None, None, None, 9.5, '{"plan":"pro"}'),
                           ("u2", "b", UTC(2024, 1, 1, 1), None, None, None, None, None)]


def test_xlsx_spend_and_survey(con, tmp_path):
    spend = tmp_path / "spend.xlsx"
    pd.DataFrame({"日期": ["2024-01-01", "2024-01-02"], "渠道": ["Baidu", "baidu"], "活动": ["s1", ""],
                  "花费": ["100", "50.5"], "展示": ["1000", ""], "点击": ["10", ""]}).to_excel(spend, index=False)
    r = store.load_spend(con, str(spend))
    assert (r.rows_read, r.loaded, r.rejected) == (2, 2, 0)
    assert con.execute("SELECT date, channel, campaign, spend, impressions, clicks FROM spend ORDER BY date").fetchall() == [
        (dt.date(2024, 1, 1), "baidu", "s1", 100.0, 1000, 10),
        (dt.date(2024, 1, 2), "baidu", "", 50.5, None, None),   # '' campaign = channel level
    ]
    survey = tmp_path / "survey.xlsx"
    pd.DataFrame({"细分": ["学生", "学生"], "产品": ["Ours", "BrightCart"], "维度": ["Trust", "trust"],
                  "类型": ["成本", "cost"], "评分": ["7", "4"]}).to_excel(survey, index=False)
    r = store.load_survey(con, str(survey))
    assert (r.rows_read, r.loaded, r.rejected) == (2, 2, 0)
    assert con.execute("SELECT segment, product, dimension, kind, score FROM survey ORDER BY product").fetchall() == [
        ("学生", "brightcart", "trust", "cost", 4.0), ("学生", "ours", "trust", "cost", 7.0)]


def test_events_xlsx_refused_with_reason(con, tmp_path):
    path = tmp_path / "events.xlsx"
    pd.DataFrame({"user_id": ["u1"], "event": ["a"], "time": ["2024-01-01"]}).to_excel(path, index=False)
    with pytest.raises(store.LoadRefused, match=r"events\.xlsx: events must be CSV or Parquet"):
        store.load_events(con, str(path))
    assert con.execute("SELECT count(*) FROM loads").fetchone()[0] == 0


# --------------------------------------------------------------------------------------------
# Header aliases and mappings
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    ("user_id", "event_name", "event_time", "channel", "campaign", "revenue", "page"),
    ("uid", "event", "timestamp", "utm_source", "utm_campaign", "amount", "url"),
    ("distinct_id", "event", "time", "source", "utm_campaign", "amount", "page"),
    ("User ID", "Event Name", "Event-Time", "$utm_source", "UTM_Campaign", "Revenue", "URL"),
    ("用户ID", "事件", "时间", "渠道", "活动", "金额", "页面"),
])
def test_header_aliases(con, tmp_path, headers):
    path = write(tmp_path, "e.csv", ",".join(headers) + "\nu1,pay,2024-03-01 12:00,Ads,Spring,12.5,/buy\n")
    report = store.load_events(con, path)
    canonical = ("user_id", "event_name", "event_time", "channel", "campaign", "revenue", "page")
    assert report.mapping == dict(zip(canonical, headers))
    assert events(con) == [("u1", "pay", UTC(2024, 3, 1, 12), "ads", "spring", "/buy", 12.5, None)]


def test_explicit_mapping_overrides_aliases_and_unmapped_go_to_properties(con, tmp_path):
    # 'user_id' would map by alias; the mapping picks 'member' instead, so 'user_id' is a property
    path = write(tmp_path, "e.csv", "member,user_id,act,when\nm1,x9,open,2024-01-01 00:00\n")
    report = store.load_events(con, path, mapping={"user_id": "member", "event_name": "act", "event_time": "when"})
    assert report.mapping == {"user_id": "member", "event_name": "act", "event_time": "when"}
    assert events(con) == [("m1", "open", UTC(2024, 1, 1), None, None, None, None, '{"user_id":"x9"}')]


def test_missing_required_column_refused_naming_file_column_and_headers(con, tmp_path):
    path = write(tmp_path, "clicks.csv", "user_id,page,time\nu1,/a,2024-01-01\n")
    with pytest.raises(store.LoadRefused) as err:
        store.load_events(con, path)
    msg = str(err.value)
    assert msg.startswith("clicks.csv: no column for event_name")
    assert "Columns found: user_id, page, time" in msg


def test_mapping_to_absent_column_refused(con, tmp_path):
    path = write(tmp_path, "e.csv", "user_id,event,time\nu1,a,2024-01-01\n")
    with pytest.raises(store.LoadRefused, match=r"e\.csv: the mapping names column 'who' for user_id"):
        store.load_events(con, path, mapping={"user_id": "who"})


def test_duplicate_and_blank_headers_are_kept_apart(con, tmp_path):
    # headers: x, x -> x, x_2; a blank 5th header -> column_5
    path = write(tmp_path, "e.csv", "user_id,event,time,x,,x\nu1,a,2024-01-01 00:00,1,b,2\n")
    assert store.inspect_headers(path) == ["user_id", "event", "time", "x", "column_5", "x_2"]
    store.load_events(con, path)
    props = json.loads(con.execute("SELECT properties FROM events").fetchone()[0])
    assert props == {"x": "1", "column_5": "b", "x_2": "2"}


def test_properties_column_with_json_text(con, tmp_path):
    # a JSON object is merged with the unmapped columns; text that is not a JSON object is kept as
    # the property "properties" (nothing silently lost); an empty cell adds nothing
    path = write(tmp_path, "e.csv",
                 'user_id,event,time,properties,plan\n'
                 'u1,a,2024-01-01 00:00,"{""sku"": ""A1"", ""qty"": 2}",pro\n'
                 'u2,a,2024-01-01 00:00,not json,\n'
                 'u3,a,2024-01-01 00:00,,\n')
    store.load_events(con, path)
    got = con.execute("SELECT user_id, properties FROM events ORDER BY user_id").fetchall()
    assert [(u, json.loads(p) if p else None) for u, p in got] == [
        ("u1", {"sku": "A1", "qty": 2, "plan": "pro"}), ("u2", {"properties": "not json"}), ("u3", None)]


# --------------------------------------------------------------------------------------------
# Time forms
# --------------------------------------------------------------------------------------------

TIME_FORMS = [
    # (text, source timezone, stored UTC)
    ("2024-01-01T18:00:00+08:00", "UTC", UTC(2024, 1, 1, 10)),
    ("2024-01-01 18:00:00+0800", "UTC", UTC(2024, 1, 1, 10)),
    ("2024-01-01T10:00:00Z", "UTC", UTC(2024, 1, 1, 10)),
    ("2024-01-01T10:00:00.250Z", "UTC", UTC(2024, 1, 1, 10, 0, 0, 250000)),
    ("2024-01-01T05:00:00-05:00", "Asia/Shanghai", UTC(2024, 1, 1, 10)),   # an offset wins over the zone
    ("2024-01-01 10:00:00", "UTC", UTC(2024, 1, 1, 10)),
    ("2024-01-01 18:00:00", "Asia/Shanghai", UTC(2024, 1, 1, 10)),          # naive, read as +08:00
    ("2024/01/01 18:00", "Asia/Shanghai", UTC(2024, 1, 1, 10)),
    ("2024/01/01 18:00:05", "UTC", UTC(2024, 1, 1, 18, 0, 5)),
    ("2024-07-01 12:00:00", "Europe/Berlin", UTC(2024, 7, 1, 10)),          # summer time, +02:00
    ("1704103200", "Asia/Shanghai", UTC(2024, 1, 1, 10)),                  # epoch seconds are UTC
    ("1704103200000", "UTC", UTC(2024, 1, 1, 10)),                         # epoch milliseconds
    ("1704103200.5", "UTC", UTC(2024, 1, 1, 10, 0, 0, 500000)),
]


@pytest.mark.parametrize("text,tz,expected", TIME_FORMS)
def test_time_forms(con, tmp_path, text, tz, expected):
    path = write(tmp_path, "e.csv", f"user_id,event,time\nu1,a,{text}\n")
    report = store.load_events(con, path, source_timezone=tz)
    assert report.rejected == 0, report.rejected_samples
    assert con.execute("SELECT event_time FROM events").fetchone()[0] == expected


def test_unknown_timezone_is_a_user_error(con, tmp_path):
    path = write(tmp_path, "e.csv", "user_id,event,time\nu1,a,2024-01-01\n")
    with pytest.raises(store.UserInputError, match="Unknown time zone 'Mars/Base'"):
        store.load_events(con, path, source_timezone="Mars/Base")


# --------------------------------------------------------------------------------------------
# Rejected rows and refused files
# --------------------------------------------------------------------------------------------

def test_rejected_rows_with_line_and_reason(con, tmp_path):
    path = write(tmp_path, "bad.csv",
                 "user_id,event,time,revenue\n"
                 "u1,a,2024-01-01 00:00,\n"          # line 2 ok
                 ",a,2024-01-01 00:00,\n"            # line 3 no user
                 "u3,,2024-01-01 00:00,\n"           # line 4 no event
                 "u4,a,,\n"                          # line 5 no time
                 "u5,a,yesterday,\n"                 # line 6 bad time
                 "u6,a,2024-01-01 00:00,12abc\n"     # line 7 bad revenue
                 "u7,a\n"                            # line 8 too few columns
                 "u8,a,2024-01-02 00:00,3\n")        # line 9 ok
    report = store.load_events(con, path)
    assert (report.rows_read, report.loaded, report.rejected, report.duplicates) == (8, 2, 6, 0)
    got = con.execute("SELECT source_file, line, reason FROM rejected_rows ORDER BY line").fetchall()
    assert got == [
        ("bad.csv", 3, "no user_id"),
        ("bad.csv", 4, "no event_name"),
        ("bad.csv", 5, "no event_time"),
        ("bad.csv", 6, "event_time 'yesterday' is not a date-time"),
        ("bad.csv", 7, "revenue '12abc' is not a finite number"),
        ("bad.csv", 8, "malformed line: missing columns (Expected Number of Columns: 4 Found: 2)"),
    ]
    assert json.loads(con.execute("SELECT raw FROM rejected_rows WHERE line = 6").fetchone()[0]) == {
        "user_id": "u5", "event": "a", "time": "yesterday", "revenue": None}
    assert list(report.rejected_samples["line"]) == [3, 4, 5, 6, 7, 8]


def test_quoted_newlines_shift_line_numbers(con, tmp_path):
    # record 1 spans lines 2-4 (two line breaks inside quotes), so the bad record starts on line 5
    path = write(tmp_path, "e.csv",
                 'user_id,event,time,note\nu1,a,2024-01-01 00:00,"one\ntwo\nthree"\nu2,a,soon,x\n')
    report = store.load_events(con, path)
    assert (report.loaded, report.rejected) == (1, 1)
    assert con.execute("SELECT line, reason FROM rejected_rows").fetchall() == [
        (5, "event_time 'soon' is not a date-time")]
    assert json.loads(con.execute("SELECT properties FROM events").fetchone()[0]) == {"note": "one\ntwo\nthree"}


def test_over_long_line_is_a_rejected_row(con, tmp_path):
    path = write(tmp_path, "e.csv", "user_id,event,time\nu1,a,2024-01-01\nu2," + "x" * 9_000_000
                 + ",2024-01-01\nu3,a,2024-01-01\n")
    report = store.load_events(con, path)
    assert (report.rows_read, report.loaded, report.rejected) == (3, 2, 1)
    line, reason = con.execute("SELECT line, reason FROM rejected_rows").fetchone()
    assert line == 3 and reason.startswith("malformed line: line size over maximum")


def test_invalid_utf8_after_the_sample_refuses_the_file(con, tmp_path):
    # the first MB is UTF-8 with Chinese text; line 30,002 holds bytes that are not UTF-8
    good = "".join(f"用户{i},访问,2024-01-01 00:00\n" for i in range(30_000)).encode()
    path = tmp_path / "mixed.csv"
    path.write_bytes("user_id,event,time\n".encode() + good + b"u9,\xff\xfe,2024-01-01 00:00\n")
    with pytest.raises(store.LoadRefused) as err:
        store.load_events(con, str(path))
    assert str(err.value).startswith("mixed.csv: line 30,002 is not valid UTF-8 text (1 line(s) affected)")
    assert con.execute("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM loads)").fetchone()[0] == 0
    # no staging tables or views are left behind
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal").fetchone()[0] == 0


def test_gbk_file_with_an_ascii_start_is_read_as_gbk(con, tmp_path):
    # the first 1 MB sample is plain ASCII, so it looks like UTF-8; GBK text appears later
    ascii_rows = "".join(f"u{i},view,2024-01-01 00:00\n" for i in range(60_000))
    text = "user_id,event,time\n" + ascii_rows + "王五,注册,2024-01-02 00:00\n"
    path = write(tmp_path, "late.csv", text, "gbk")
    report = store.load_events(con, path)
    assert (report.rows_read, report.loaded, report.rejected) == (60_001, 60_001, 0)
    assert con.execute("SELECT event_name FROM events WHERE user_id = '王五'").fetchone()[0] == "注册"


@pytest.mark.parametrize("content,message", [
    (b"user_id,event,time\n", "h.csv: the file has a header (user_id, event, time) but no rows."),
    (b"user_id\nu1\n", "h.csv: found only one column (user_id)"),
    (b"", "h.csv: the file is empty."),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "h.csv: this is an image or PDF"),
    (b"\x1f\x8b\x08\x00garbage", "h.csv: the file looks gzip-compressed but cannot be decompressed"),
    (b"user_id,event,time\nu1,\x00\x01,2024\n", "h.csv: the file contains binary data"),
])
def test_refused_files(con, tmp_path, content, message):
    path = tmp_path / "h.csv"
    path.write_bytes(content)
    with pytest.raises(store.LoadRefused) as err:
        store.load_events(con, str(path))
    assert str(err.value).startswith(message)
    assert con.execute("SELECT count(*) FROM loads").fetchone()[0] == 0


def test_not_parquet_refused(con, tmp_path):
    path = tmp_path / "e.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(store.LoadRefused, match=r"e\.parquet: not a readable Parquet file"):
        store.load_events(con, str(path))


def test_missing_file_refused(con, tmp_path):
    with pytest.raises(store.LoadRefused, match=r"nope\.csv: no such file"):
        store.load_events(con, str(tmp_path / "nope.csv"))


def _alias_cases():
    for kind, columns in store.ALIASES.items():
        for canonical, aliases in columns.items():
            for alias in aliases:
                yield kind, canonical, alias


@pytest.mark.parametrize("kind,canonical,alias", list(_alias_cases()))
def test_every_alias_maps_to_its_column(kind, canonical, alias):
    # the alias alongside the canonical names of the other required columns
    others = [c for c in store.REQUIRED[kind] if c != canonical]
    mapping = store.detect_mapping(kind, [alias.upper() if alias.isascii() else alias] + others)
    assert mapping[canonical] == (alias.upper() if alias.isascii() else alias)
