"""Spend sheets (replacement by key, merging within a file, currency conversion, rejects) and survey
ratings (kinds, score range, reload idempotence). Expected numbers are worked out in comments."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import store

D = dt.date


def write(tmp_path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def spend_rows(con):
    return con.execute("""SELECT date, channel, campaign, spend, impressions, clicks, currency, spend_original,
                                 source_file FROM spend ORDER BY date, channel, campaign""").fetchall()


def test_spend_keys_are_normalised_and_rows_replace_earlier_ones(con, tmp_path):
    a = write(tmp_path, "a.csv", "date,channel,campaign,spend,impressions,clicks\n"
                                 "2024-01-01,Baidu ,Brand,100,1000,10\n"
                                 "2024-01-01,baidu,,40,,\n"            # channel level ('' campaign)
                                 "2024-01-02,douyin,flash,55.5,800,8\n")
    r = store.load_spend(con, a)
    assert (r.rows_read, r.loaded, r.replaced, r.rejected) == (3, 3, 0, 0)
    # b re-states (2024-01-01, baidu, brand) with new numbers, adds a day; 'BAIDU'/'BRAND' are the same key
    b = write(tmp_path, "b.csv", "日期,渠道,活动,花费\n2024/01/01,BAIDU,BRAND,120\n2024-01-03,baidu,brand,30\n")
    r = store.load_spend(con, b)
    assert (r.rows_read, r.loaded, r.replaced, r.rejected) == (2, 2, 1, 0)
    assert spend_rows(con) == [
        (D(2024, 1, 1), "baidu", "", 40.0, None, None, None, 40.0, "a.csv"),
        (D(2024, 1, 1), "baidu", "brand", 120.0, None, None, None, 120.0, "b.csv"),   # replaced whole
        (D(2024, 1, 2), "douyin", "flash", 55.5, 800, 8, None, 55.5, "a.csv"),
        (D(2024, 1, 3), "baidu", "brand", 30.0, None, None, None, 30.0, "b.csv"),
    ]
    # reloading b replaces its two keys with themselves: same table
    before = spend_rows(con)
    r = store.load_spend(con, b)
    assert (r.loaded, r.replaced) == (2, 2)
    assert spend_rows(con) == before


def test_rows_with_one_key_in_a_file_are_summed(con, tmp_path):
    # two ad groups of one campaign-day: 10 + 15 = 25 spend, 100 + 50 = 150 impressions, 1 + 2 = 3 clicks
    path = write(tmp_path, "s.csv", "date,channel,campaign,spend,impressions,clicks\n"
                                    "2024-01-01,ads,c,10,100,1\n2024-01-01,ADS,c ,15,50,2\n")
    r = store.load_spend(con, path)
    assert (r.rows_read, r.loaded, r.duplicates, r.details["merged_rows"]) == (2, 1, 1, 1)
    assert spend_rows(con) == [(D(2024, 1, 1), "ads", "c", 25.0, 150, 3, None, 25.0, "s.csv")]


def test_currency_conversion_to_base(con, tmp_path):
    assert store.base_currency(con) == "CNY"
    store.set_currency_rate(con, "usd", 7.2)
    path = write(tmp_path, "s.csv", "date,channel,spend,currency\n"
                                    "2024-01-01,google,10,USD\n"     # 10 USD * 7.2 = 72 CNY
                                    "2024-01-01,baidu,50,cny\n"      # base currency: as is
                                    "2024-01-01,seo,5,\n"            # no currency: base
                                    "2024-01-02,meta,3,EUR\n")       # no rate: rejected
    r = store.load_spend(con, path)
    assert (r.rows_read, r.loaded, r.rejected) == (4, 3, 1)
    assert con.execute("SELECT channel, spend, currency, spend_original FROM spend ORDER BY channel").fetchall() == [
        ("baidu", 50.0, "CNY", 50.0), ("google", 72.0, "USD", 10.0), ("seo", 5.0, None, 5.0)]
    assert con.execute("SELECT line, reason FROM rejected_rows").fetchall() == [
        (5, "no exchange rate for currency EUR (set one for the base currency)")]
    with pytest.raises(store.UserInputError, match="rate for JPY must be a positive number"):
        store.set_currency_rate(con, "JPY", 0)


def test_spend_rejects(con, tmp_path):
    path = write(tmp_path, "s.csv", "date,channel,campaign,spend,impressions\n"
                                    "2024-01-01,ads,a,1,\n"           # line 2 ok
                                    ",ads,a,1,\n"                     # line 3
                                    "someday,ads,a,1,\n"              # line 4
                                    "2024-01-01,,a,1,\n"              # line 5
                                    "2024-01-01,ads,b,,\n"            # line 6
                                    "2024-01-01,ads,c,-3,\n"          # line 7
                                    "2024-01-01,ads,d,lots,\n"        # line 8
                                    "2024-01-01,ads,e,1,many\n")      # line 9
    r = store.load_spend(con, path)
    assert (r.rows_read, r.loaded, r.rejected) == (8, 1, 7)
    assert con.execute("SELECT line, reason FROM rejected_rows ORDER BY line").fetchall() == [
        (3, "no date"), (4, "date 'someday' is not a date"), (5, "no channel"), (6, "no spend"),
        (7, "spend -3 is negative"), (8, "spend 'lots' is not a finite number"),
        (9, "impressions 'many' is not a number")]


def test_spend_missing_column_refused(con, tmp_path):
    with pytest.raises(store.LoadRefused) as err:
        store.load_spend(con, write(tmp_path, "s.csv", "day,campaign,cost\n2024-01-01,a,1\n"))
    assert str(err.value).startswith("s.csv: no column for channel (required for spend). "
                                     "Columns found: day, campaign, cost.")


def test_spend_dataframe(con):
    r = store.load_spend(con, pd.DataFrame({"date": ["2024-01-01"], "channel": ["x"], "spend": [2.5]}))
    assert (r.loaded, r.source) == (1, "DataFrame")


# --------------------------------------------------------------------------------------------
# Survey
# --------------------------------------------------------------------------------------------

SURVEY = ("segment,product,dimension,kind,score,respondent_id\n"
          "students,Ours,Trust,cost,7,r1\n"
          "students,Ours,Trust,cost,7,\n"
          "students,Ours,Trust,cost,7,\n"      # the same rating twice without a respondent: both count
          "students,BrightCart,trust,成本,4,r1\n"
          "students,ours,speed,价值,8.5,r1\n")


def test_survey_loads_and_reload_is_idempotent(con, tmp_path):
    path = write(tmp_path, "survey.csv", SURVEY)
    r = store.load_survey(con, path)
    assert (r.rows_read, r.loaded, r.duplicates, r.rejected) == (5, 5, 0, 0)
    rows = con.execute("SELECT segment, product, dimension, kind, score, respondent_id FROM survey "
                       "ORDER BY product, dimension, respondent_id NULLS LAST").fetchall()
    assert rows == [
        ("students", "brightcart", "trust", "cost", 4.0, "r1"),
        ("students", "ours", "speed", "value", 8.5, "r1"),
        ("students", "ours", "trust", "cost", 7.0, "r1"),
        ("students", "ours", "trust", "cost", 7.0, None),
        ("students", "ours", "trust", "cost", 7.0, None),
    ]
    r = store.load_survey(con, path)
    assert (r.rows_read, r.loaded, r.duplicates) == (5, 0, 5)
    assert con.execute("SELECT count(*) FROM survey").fetchone()[0] == 5
    # a file with one more copy of the repeated rating adds exactly that one (its 3rd occurrence)
    r = store.load_survey(con, write(tmp_path, "more.csv", SURVEY + "students,Ours,Trust,cost,7,\n"))
    assert (r.loaded, r.duplicates) == (1, 5)


def test_survey_rejects(con, tmp_path):
    path = write(tmp_path, "s.csv", "segment,product,dimension,kind,score\n"
                                    "a,ours,trust,cost,11\n"
                                    "a,ours,trust,benefit,3\n"
                                    "a,ours,trust,value,\n"
                                    ",ours,trust,value,3\n"
                                    "a,ours,trust,value,-0.5\n")
    r = store.load_survey(con, path)
    assert (r.rows_read, r.loaded, r.rejected) == (5, 0, 5)
    assert con.execute("SELECT line, reason FROM rejected_rows ORDER BY line").fetchall() == [
        (2, "score 11 is outside 0..10"), (3, "kind 'benefit' is not value or cost"),
        (4, "score '' is not a number"), (5, "no segment"), (6, "score -0.5 is outside 0..10")]


def test_spend_reject_lines_follow_the_file_through_the_rate_join(con, tmp_path):
    # 3,000 rows alternating USD (rate known) and GBP (no rate): the GBP rows are the even lines
    # 3, 5, ..., 3001 (line 2 is the first data row)
    store.set_currency_rate(con, "USD", 7.0)
    rows = "".join(f"2024-01-01,c{i},{i},{'USD' if i % 2 == 0 else 'GBP'}\n" for i in range(3000))
    r = store.load_spend(con, write(tmp_path, "s.csv", "date,channel,spend,currency\n" + rows))
    assert (r.loaded, r.rejected) == (1500, 1500)
    lines = [x[0] for x in con.execute("SELECT line FROM rejected_rows ORDER BY line").fetchall()]
    assert lines == list(range(3, 3002, 2))
    assert con.execute("SELECT raw FROM rejected_rows WHERE line = 3001").fetchone()[0] == (
        '{"date":"2024-01-01","channel":"c2999","spend":"2999","currency":"GBP"}')
