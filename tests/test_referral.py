"""Referral: invites, invited sign-ups linked by the inviter property, and the K-factor."""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from metrics.filters import Filters
import metrics.referral as rf
from metrics.referral import (ReferralParams, referral, referral_by_channel, referral_page, referral_sql,
                              referral_summary)
from store.errors import UserInputError
from tests.conftest import reads_hours

NaN = float("nan")

# a (wechat) invites twice in week 1; b (douyin) invites once. c signs up in week 1 naming a; d signs up
# in week 2 naming a; e names a user who does not exist and f names itself: neither links to an inviter.
JOURNEYS = {
    "a": [("page_view", "2024-01-01 10:00", {"channel": "wechat"}), ("invite", "2024-01-01 11:00"),
          ("invite", "2024-01-02 10:00")],
    "b": [("page_view", "2024-01-02 10:00", {"channel": "douyin"}), ("invite", "2024-01-03 10:00")],
    "c": [("signup", "2024-01-03 12:00", {"channel": "referral", "inviter_id": "a"})],
    "d": [("signup", "2024-01-10 12:00", {"channel": "referral", "inviter_id": "a"})],
    "e": [("signup", "2024-01-04 12:00", {"inviter_id": "ghost"})],
    "f": [("signup", "2024-01-04 13:00", {"inviter_id": "f"})],
}


@pytest.fixture
def world(con, journeys):
    journeys(JOURNEYS)
    return con


def test_weekly_referral_by_channel(world):
    got = referral(world)
    w1, w2 = date(2024, 1, 1), date(2024, 1, 8)
    expected = pd.DataFrame([
        # direct: e and f are active, no invites
        (w1, "direct", 2, 0, 0, 0.0, 0, NaN, NaN),
        # douyin: 1 invite by 1 active user, no sign-up -> conversion 0, K 0
        (w1, "douyin", 1, 1, 1, 1.0, 0, 0.0, 0.0),
        (w1, "referral", 1, 0, 0, 0.0, 0, NaN, NaN),
        # wechat: 2 invites / 1 user = 2; c's sign-up credited to a's channel -> 1/2; K = 2 x 0.5 = 1
        (w1, "wechat", 1, 1, 2, 2.0, 1, 0.5, 1.0),
        (w2, "referral", 1, 0, 0, 0.0, 0, NaN, NaN),
        # d signs up in week 2: credited to wechat in week 2, a period without wechat activity
        (w2, "wechat", 0, 0, 0, NaN, 1, NaN, NaN),
    ], columns=["period_start", "channel", "active_users", "inviters", "invites", "invites_per_user",
                "invited_signups", "invite_conversion", "k_factor"])
    assert_frame_equal(got, expected, check_dtype=False)


def test_summary_k_factor(world):
    got = referral_summary(world)
    # 6 active users, 2 inviters, 3 invites -> 0.5 per user; 2 linked sign-ups (c, d) / 3 invites;
    # K = 0.5 x 2/3 = 1/3 (= invited sign-ups / active users)
    expected = pd.DataFrame([(6, 2, 3, 0.5, 2, 2 / 3, 1 / 3)],
                            columns=["users", "inviters", "invites", "invites_per_user", "invited_signups",
                                     "invite_conversion", "k_factor"])
    assert_frame_equal(got, expected, check_dtype=False)


def test_channel_filter_selects_inviters(world):
    # only wechat users act: a (2 invites); both sign-ups name a -> conversion 1, K = 2 x 1 = 2
    got = referral_summary(world, ReferralParams(filters=Filters(channels=("wechat",))))
    assert got.iloc[0].tolist() == [1, 1, 2, 2.0, 2, 1.0, 2.0]


def test_summary_per_channel_in_one_query(world):
    # wechat: a alone, 2 invites, both sign-ups name a -> K 2 (as the channel filter gives); douyin: b, 1 invite,
    # no sign-up -> K 0; direct (e, f) and referral (c, d) invite nobody -> conversion and K undefined.
    got = referral_by_channel(world).set_index("channel")
    assert got.loc["wechat"].tolist() == [1, 1, 2, 2.0, 2, 1.0, 2.0]
    assert got.loc["douyin"].tolist() == [1, 1, 1, 1.0, 0, 0.0, 0.0]
    assert got.loc["referral", ["users", "invites", "invited_signups"]].tolist() == [2, 0, 0]
    for channel in ("direct", "douyin", "referral", "wechat"):
        one = referral_summary(world, ReferralParams(filters=Filters(channels=(channel,))))
        row = got.loc[channel] if channel in got.index else None
        if row is None:
            assert one["users"].iloc[0] == 0
        else:
            assert row.tolist() == pytest.approx(one.iloc[0].tolist(), nan_ok=True)


def test_referral_page_is_the_three_tables_from_one_pass(world):
    # The hand-worked summary (6 users, 3 invites, K 1/3) and the tables above, each equal to its own function;
    # the temporary tables are gone afterwards.
    got = referral_page(world)
    assert got["summary"].iloc[0].tolist() == pytest.approx([6, 2, 3, 0.5, 2, 2 / 3, 1 / 3])
    for p in (ReferralParams(), ReferralParams(period="day", filters=Filters(start=date(2024, 1, 1),
                                                                            end=date(2024, 1, 7))),
              ReferralParams(filters=Filters(channels=("wechat",)))):
        got = referral_page(world, p)
        assert_frame_equal(got["summary"], referral_summary(world, p))
        assert_frame_equal(got["per_period"], referral(world, p))
        assert_frame_equal(got["by_channel"], referral_by_channel(world, p))
    assert world.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_referral%'").fetchone()[0] == 0


def _random_referrals(seed: int) -> dict:
    import random
    rng = random.Random(seed)
    log = {}
    for u in range(50):
        events = [("page_view", f"2024-01-{rng.randrange(1, 28):02d} {rng.randrange(24):02d}:00",
                   {"channel": rng.choice([None, "wechat", "douyin", "seo"]), "platform": rng.choice(["ios", "web"])})]
        for _ in range(rng.randrange(0, 6)):
            name = rng.choice(["invite", "invite", "page_view", "signup"])
            props = {"platform": rng.choice(["ios", "web"])}
            if name == "signup":
                props["inviter_id"] = f"r{rng.randrange(60)}"
            events.append((name, f"2024-0{rng.randrange(1, 3)}-{rng.randrange(1, 28):02d} {rng.randrange(24):02d}:30",
                           props))
        log[f"r{u}"] = events
    return log


@pytest.mark.parametrize("filters", [
    None, Filters(channels=("wechat", "seo")), Filters(start=date(2023, 12, 1), end=date(2024, 3, 1)),
    Filters(start=date(2024, 1, 1), end=date(2024, 2, 27), channels=("douyin",)),
    Filters(start=date(2024, 1, 10), end=date(2024, 1, 20)), Filters(segment={"platform": "ios"}),
    Filters(timezone="Asia/Shanghai", start=date(2023, 12, 31), end=date(2024, 3, 1)),
])
def test_summaries_from_the_rollup_equal_the_scan_of_the_events(con, journeys, monkeypatch, filters):
    """With no date range (or one holding every event) and no segment, the summaries read each user's invites
    from the per-user rollup: the same numbers as the scan of the events."""
    journeys(_random_referrals(len(repr(filters))))
    p = ReferralParams(filters=filters, timezone=filters.timezone if filters else "UTC")
    fast = referral_summary(con, p), referral_by_channel(con, p), referral_page(con, p)
    monkeypatch.setattr(rf, "rollups_ok", lambda f: False)
    slow = referral_summary(con, p), referral_by_channel(con, p), referral_page(con, p)
    assert_frame_equal(fast[0], slow[0])
    assert_frame_equal(fast[1], slow[1])
    for key in ("summary", "per_period", "by_channel"):
        assert_frame_equal(fast[2][key], slow[2][key])
    assert fast[0]["invites"].iloc[0] > 0 and fast[0]["invited_signups"].iloc[0] > 0


def test_the_page_reads_the_events_once_with_a_range_holding_them_all(world):
    # the dashboard's default range holds every event: the summaries come from the page's two tables, not from
    # another pass (over the rollup and the sign-ups)
    class Recorder:
        def __init__(self, con):
            self.con, self.sql = con, []

        def execute(self, sql, params=None):
            self.sql.append(sql)
            return self.con.execute(sql, params or [])

    rec = Recorder(world)
    p = ReferralParams(filters=Filters(start=date(2024, 1, 1), end=date(2024, 1, 31)))
    got = referral_page(rec, p)
    reads = [q for q in rec.sql if ("FROM events" in q or "FROM user_events" in q)
             and not q.startswith("SELECT min(event_time), max(event_time)")]   # the span check: column statistics
    assert len(reads) == 2 and all(q.startswith("CREATE OR REPLACE TEMP TABLE") for q in reads), reads
    assert got["summary"].iloc[0].tolist() == pytest.approx([6, 2, 3, 0.5, 2, 2 / 3, 1 / 3])

def test_only_summaries_over_every_event_read_the_rollup():
    assert "FROM user_events" in referral_sql(ReferralParams(), grouped=False)[0]
    assert "FROM user_events" in referral_sql(ReferralParams(filters=Filters(channels=("a",))), by_channel=True)[0]
    assert "FROM user_events" not in referral_sql(ReferralParams())[0]                      # per period
    ranged = ReferralParams(filters=Filters(start=date(2024, 1, 1)))
    assert "FROM user_events" not in referral_sql(ranged, grouped=False)[0]
    assert "FROM user_events" not in referral_sql(ReferralParams(filters=Filters(segment={"a": "b"})),
                                                  grouped=False)[0]

def test_monthly_and_range(world):
    got = referral(world, ReferralParams(period="month"))
    assert got["period_start"].unique().tolist() == [date(2024, 1, 1)]
    wechat = got[got["channel"] == "wechat"].iloc[0]
    assert (wechat["invites"], wechat["invited_signups"], wechat["k_factor"]) == (2, 2, 2.0)
    # range 1-7 Jan leaves out d's sign-up
    week1 = referral_summary(world, ReferralParams(filters=Filters(start=date(2024, 1, 1), end=date(2024, 1, 7))))
    assert week1[["users", "invites", "invited_signups"]].iloc[0].tolist() == [5, 3, 1]


def test_inviter_property_is_configurable(con, journeys):
    journeys({"a": [("page_view", "2024-01-01 10:00"), ("invite", "2024-01-01 11:00")],
              "c": [("signup", "2024-01-02 12:00", {"referrer": "a"})]})
    assert referral_summary(con)["invited_signups"].iloc[0] == 0
    got = referral_summary(con, ReferralParams(inviter_property="referrer"))
    assert got[["invites", "invited_signups", "k_factor"]].iloc[0].tolist() == [1, 1, 0.5]


def test_timezone_moves_events_between_periods(con, journeys):
    # Sunday 7 Jan 20:30 UTC is Monday 8 Jan 04:30 in Shanghai: the invite moves to the next week
    journeys({"x": [("page_view", "2024-01-07 20:00", {"channel": "wechat"}), ("invite", "2024-01-07 20:30")]})
    utc = referral(con)
    shanghai = referral(con, ReferralParams(timezone="Asia/Shanghai"))
    assert utc[["period_start", "invites"]].values.tolist() == [[date(2024, 1, 1), 1]]
    assert shanghai[["period_start", "invites"]].values.tolist() == [[date(2024, 1, 8), 1]]


@pytest.mark.parametrize("kwargs, message", [
    ({"period": "year"}, "Period"),
    ({"inviter_property": " "}, "inviter"),
])
def test_bad_params(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        ReferralParams(**kwargs)


# ---- time buckets: local days in a zone with one offset, UTC quarter-hours otherwise ------------------------

def _random_activity(seed: int) -> dict:
    """Users with page views and invites at random minutes, crowded around local midnights, DST changes, the
    2000 / 2100 edges of the day buckets and the 2050 edge of the years in which a zone's changes are written out
    (:func:`metrics.filters.zone_offsets`; a user's events all carry the user's channel)."""
    import random

    rnd = random.Random(seed)
    anchors = ["2024-03-10 06:00", "2024-03-31 01:00", "2024-11-03 06:00", "2024-10-06 15:30", "2024-04-07 15:00",
               "2024-01-07 16:00", "2024-01-31 18:15", "1999-12-31 23:00", "2099-12-31 23:30", "2024-06-30 23:45",
               "2049-12-31 23:30"]
    spec = {}
    for u in range(60):
        channel = rnd.choice(["wechat", "douyin", "seo"])
        events = []
        for _ in range(rnd.randint(1, 8)):
            at = pd.Timestamp(rnd.choice(anchors)) + pd.Timedelta(minutes=rnd.randint(-26 * 60, 26 * 60))
            events.append((rnd.choice(["page_view", "page_view", "invite"]), at.strftime("%Y-%m-%d %H:%M"),
                           {"channel": channel}))
        spec[f"u{u}"] = events
    return spec


def _activity_oracle(spec: dict, tz: str, period: str) -> pd.DataFrame:
    """Active users, inviters and invites per local period and channel, each event converted on its own."""
    rows = [(u, e[0], pd.Timestamp(e[1]), e[2]["channel"]) for u, events in spec.items() for e in events]
    df = pd.DataFrame(rows, columns=["user", "name", "utc", "channel"])
    local = df["utc"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    if period == "day":
        start = local.dt.normalize()
    elif period == "week":
        start = (local - pd.to_timedelta(local.dt.weekday, unit="D")).dt.normalize()
    else:
        start = local.dt.to_period("M").dt.start_time
    df["period_start"] = start.dt.date
    df["invite"] = (df["name"] == "invite").astype(int)
    out = df.groupby(["period_start", "channel"]).agg(
        active_users=("user", "nunique"), inviters=("user", lambda s: s[df.loc[s.index, "invite"] == 1].nunique()),
        invites=("invite", "sum")).reset_index()
    return out.sort_values(["period_start", "channel"]).reset_index(drop=True)


def test_fixed_offset_zones_are_recognised():
    from metrics.referral import fixed_offset_seconds

    assert fixed_offset_seconds("UTC") == 0
    assert fixed_offset_seconds("Asia/Shanghai") == 8 * 3600        # no DST since 1991
    assert fixed_offset_seconds("Asia/Kathmandu") == 5 * 3600 + 45 * 60
    assert fixed_offset_seconds("America/New_York") is None          # DST
    assert fixed_offset_seconds("Europe/Moscow") is None             # +4 until 2014, +3 since


@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai", "Asia/Kathmandu", "America/New_York",
                                "Australia/Lord_Howe", "Europe/London"])
def test_activity_periods_equal_converting_every_event(con, journeys, tz):
    spec = _random_activity(sum(map(ord, tz)))
    journeys(spec)
    for period in ("day", "week", "month"):
        got = referral(con, ReferralParams(period=period, timezone=tz))
        got = got[got["active_users"] > 0][["period_start", "channel", "active_users", "inviters", "invites"]]
        expected = _activity_oracle(spec, tz, period)
        assert len(expected) > 10
        assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
        # and the one-pass page reads the same buckets
        page = referral_page(con, ReferralParams(period=period, timezone=tz))["per_period"]
        assert_frame_equal(page, referral(con, ReferralParams(period=period, timezone=tz)))


@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai", "America/New_York", "Australia/Lord_Howe"])
def test_buckets_from_the_hours_equal_the_buckets_from_the_events(con, journeys, monkeypatch, tz):
    """In UTC, a whole-hour fixed zone and one whose summer time moves by whole hours at whole UTC hours the
    per-period buckets come from ``user_hours`` and the referral-stage events; they give the tables of the events,
    with a date range and a channel selection too. Lord Howe's summer time moves by half an hour: the events."""
    import metrics.derive as derive
    import metrics.referral as rm
    from metrics.filters import zone_offsets

    # the events of the years in which the zone's offsets are written out only (2000-2099 for Shanghai, whose offset
    # is one through them; 2000-2049 for New York): the edges of the buckets are the test above's
    end = str(zone_offsets(tz).end.year - 1)
    spec = {u: kept for u, evs in _random_activity(sum(map(ord, tz)) + 1).items()
            if (kept := [e for e in evs if "2000" < e[1] < end])}
    journeys(spec)
    hours = tz != "Australia/Lord_Howe"
    assert derive.hours_ok(con, None, tz) == hours
    if hours:
        assert "user_hours" in rm.referral_sql(ReferralParams(timezone=tz), hours=True)[0]
    else:   # the hours' local time is the UTC time plus whole hours: not a query to build at Lord Howe
        with pytest.raises(ValueError, match="not a whole hour"):
            rm.referral_sql(ReferralParams(timezone=tz), hours=True)
    params = [ReferralParams(period=period, timezone=tz) for period in ("day", "week", "month")] + [
        ReferralParams(period="day", timezone=tz,
                       filters=Filters(start=date(2024, 1, 7), end=date(2024, 4, 7), channels=("wechat", "seo"),
                                       timezone=tz))]
    got = [(referral(con, p), referral_page(con, p)) for p in params]
    assert got[0][0]["invites"].sum() > 10 and got[3][0]["active_users"].sum() > 5
    # the tables carry the query that computes them (the one the page shows), over the hours where they stand
    assert [_reads_hours(con, t) for table, page in got for t in (table, page["per_period"])] == [hours] * 8
    asked = []   # the tables of the events: every check says no (and is the one consulted)
    monkeypatch.setattr(derive, "hours_ok", lambda *args: asked.append(args) or False)
    for (table, page), p in zip(got, params):
        assert_frame_equal(table, referral(con, p))
        assert not _reads_hours(con, referral(con, p))
        for key in ("summary", "per_period", "by_channel"):
            assert_frame_equal(page[key], referral_page(con, p)[key])
        assert not _reads_hours(con, referral_page(con, p)["per_period"])
    assert len(asked) >= 2 * len(params)



def _reads_hours(con, frame) -> bool:
    """:func:`tests.conftest.reads_hours`, the query's rows being the frame's once their weeks are dates."""
    def same(again, frame):
        again["period_start"] = pd.to_datetime(again["period_start"]).dt.date
        assert_frame_equal(again, frame, check_dtype=False)
    return reads_hours(con, frame, same)
