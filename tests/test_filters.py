"""The global filter object: one meaning for channels, campaigns, segments and dates everywhere."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from metrics import Filters, Step
from metrics.selectors import step_sql


def _count(con, where_params):
    where, params = where_params
    return con.execute(f"SELECT count(*) FROM events e WHERE {where}", params).fetchone()[0]


def test_segment_on_channel_compares_keys_like_steps(con, journeys):
    journeys({"u1": [("page_view", "2024-01-01 10:00", {"channel": "WeChat", "platform": "ios"})],
              "u2": [("page_view", "2024-01-01 11:00", {"channel": "douyin", "platform": "ios"})]})
    # Stored keys are case-folded; a user typing "WeChat " must still match (SPEC §1).
    assert _count(con, Filters(segment={"channel": "WeChat "}).events_sql()) == 1
    assert _count(con, step_sql(Step(None, {"channel": "WeChat "}))) == 1
    # Properties compare as text, exactly.
    assert _count(con, Filters(segment={"platform": "ios"}).events_sql()) == 2
    assert _count(con, Filters(segment={"platform": "IOS"}).events_sql()) == 0


def test_channel_and_campaign_select_users_by_first_touch(con, journeys):
    journeys({"u1": [("page_view", "2024-01-01 10:00", {"channel": "wechat", "campaign": "Spring"}),
                     ("purchase", "2024-01-03 10:00", {"channel": "douyin"})],
              "u2": [("page_view", "2024-01-02 10:00", {"channel": "douyin"})]})
    # u1's later douyin visit does not make u1 a douyin user: first touch is fixed.
    assert _count(con, Filters(channels=("Douyin",)).events_sql()) == 1
    assert _count(con, Filters(channels=("wechat",)).events_sql()) == 2
    assert _count(con, Filters(campaigns=(" SPRING",)).events_sql()) == 2
    assert _count(con, Filters(channels=("wechat",), campaigns=("other",)).events_sql()) == 0


def test_date_range_is_inclusive_local_days():
    f = Filters(start=date(2024, 3, 1), end=date(2024, 3, 31), timezone="Asia/Shanghai")
    # 2024-03-01 00:00 +08:00 = 2024-02-29 16:00 UTC; the day after the end, 04-01 00:00 +08:00.
    assert f.utc_range() == (datetime(2024, 2, 29, 16, 0), datetime(2024, 3, 31, 16, 0))
    assert Filters().utc_range() == (None, None)
    assert Filters().describe() == "all data"


def test_local_sql_refuses_a_name_that_is_not_a_time_zone():
    import pytest

    from metrics.filters import local_sql
    from store.errors import UserInputError

    assert local_sql("e.event_time", "UTC") == "e.event_time"
    # a time outside the years whose offsets are written out takes the zone database's lookup
    assert local_sql("e.event_time", "Europe/Berlin").endswith(
        "ELSE timezone('Europe/Berlin', e.event_time AT TIME ZONE 'UTC') END)")
    with pytest.raises(UserInputError, match="Unknown time zone"):
        local_sql("e.event_time", "UTC') ; DROP TABLE events; --")


def test_local_sql_in_a_fixed_offset_zone_is_the_lookup_at_every_moment():
    """The arithmetic path of a zone with one offset from 2000 to 2100 gives the time-zone lookup's value, and
    Python's zoneinfo's, at the edges of those years, inside them, before them (Asia/Shanghai kept summer time
    from 1986 to 1991) and for NULL; an expression with a bound value keeps the lookup (the next test covers
    zones with summer time)."""
    import random
    from datetime import timedelta, timezone
    from zoneinfo import ZoneInfo

    import duckdb

    from metrics.filters import fixed_offset_seconds, local_sql

    # (the fast path, and a bound value keeping the lookup)
    assert fixed_offset_seconds("Asia/Shanghai") == 8 * 3600
    assert fixed_offset_seconds("Etc/GMT+5") == -5 * 3600
    assert local_sql("coalesce(CAST(? AS TIMESTAMP), e.t)", "Asia/Shanghai").startswith("timezone(")
    rng = random.Random(7)
    us = timedelta(microseconds=1)
    moments = [datetime(2000, 1, 1) - us, datetime(2000, 1, 1), datetime(2100, 1, 1) - us, datetime(2100, 1, 1),
               datetime(1988, 7, 1, 12), datetime(1970, 1, 1), datetime(2024, 2, 29, 16, 0)]
    moments += [datetime(1970, 1, 1) + timedelta(seconds=rng.randrange(0, 130 * 365 * 86400), microseconds=rng.randrange(10**6))
                for _ in range(300)]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE e (t TIMESTAMP)")
    con.executemany("INSERT INTO e VALUES (?)", [[m] for m in moments] + [[None]])
    for tz in ("Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu", "Etc/GMT+5", "Pacific/Kiritimati"):
        fast = local_sql("e.t", tz)
        assert fast.startswith("(CASE"), tz
        rows = con.execute(f"SELECT t, {fast}, timezone('{tz}', t AT TIME ZONE 'UTC') FROM e").fetchall()
        assert len(rows) == len(moments) + 1
        for t, got, lookup in rows:
            assert got == lookup, (tz, t)
            if t is not None:
                want = t.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz)).replace(tzinfo=None)
                assert got == want, (tz, t)
            else:
                assert got is None



# Zones whose offset changes from 2000 to 2049: the dashboard's four with summer time; Lord Howe's half-hour summer
# time; Santiago and Sao Paulo, whose changes fall at local midnight; Moscow (+3, +4 from 2011, +3 from 2014), Tehran
# (summer time until 2022) and Apia (a day skipped in 2011) — each change of its own rule.
CHANGING_ZONES = ("Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Australia/Lord_Howe",
                  "America/Santiago", "America/Sao_Paulo", "Europe/Moscow", "Asia/Tehran", "Pacific/Apia")


@pytest.mark.parametrize("tz", CHANGING_ZONES)
def test_local_sql_in_a_zone_with_summer_time_is_the_lookup_at_every_moment(tz):
    """A zone whose offset changes takes the UTC time plus the offset found among its changes from 2000 to 2049
    (SQL halving the list of changes): the value of DuckDB's time-zone lookup and of Python's zoneinfo at each
    change, a microsecond and an hour before it and a second after, at the edges of those years, at random moments
    from 1990 to 2060 and for NULL."""
    import random
    from datetime import timedelta, timezone
    from zoneinfo import ZoneInfo

    import duckdb

    from metrics.filters import CHANGING_YEARS, local_sql, zone_offsets

    zone = zone_offsets(tz)
    assert (zone.start, zone.end) == (datetime(CHANGING_YEARS[0], 1, 1), datetime(CHANGING_YEARS[1], 1, 1))
    assert len(zone.changes) >= 2 and zone.whole_hours == (tz not in ("Australia/Lord_Howe", "Asia/Tehran"))
    us, hour = timedelta(microseconds=1), timedelta(hours=1)
    moments = [zone.start - us, zone.start, zone.end - us, zone.end]
    moments += [m + d for m, _ in zone.changes for d in (-hour, -us, timedelta(0), timedelta(seconds=1))]
    rng = random.Random(tz)
    moments += [datetime(1990, 1, 1) + timedelta(seconds=rng.randrange(0, 70 * 365 * 86400)) for _ in range(500)]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE e (t TIMESTAMP)")
    con.executemany("INSERT INTO e VALUES (?)", [[m] for m in moments] + [[None]])
    fast = local_sql("e.t", tz)
    assert fast.startswith("(CASE") and f"{len(zone.changes)} offset changes" in fast
    rows = con.execute(f"SELECT t, {fast}, timezone('{tz}', t AT TIME ZONE 'UTC') FROM e").fetchall()
    assert len(rows) == len(moments) + 1
    for t, got, lookup in rows:
        assert got == lookup, (tz, t)
        if t is not None:
            assert got == t.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz)).replace(tzinfo=None), (tz, t)
        else:
            assert got is None