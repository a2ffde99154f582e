"""Differential tests: traffic numbers on 240 seeded random logs against independent implementations,
each read both from the load's session rollups and from sessions derived at query time.

All logs are loaded into one store (user ids prefixed by the log, and the log id carried in ``page`` and
``campaign``), so one query per metric answers for every log: PV/UV broken down by page is PV/UV per log,
sessions broken down by campaign (the session's first event's) are sessions per log. The oracles are a
straight-line pandas computation written from SPEC §5 and ClickHouse (chdb) ``count``/``uniqExact``.
The time zone America/New_York puts the 2024-03-10 DST change inside the logs' span.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import store
from metrics import traffic
from metrics.traffic import TrafficParams, pv_uv, sessions

N_LOGS = 240
PV_NAMES = ("page_view", "pageview", "$pageview")
OTHER_NAMES = ("click", "signup", "page_view_error")
SPAN_START = pd.Timestamp("2024-03-01")  # UTC
GAP = pd.Timedelta(minutes=30)


def random_logs(seed: int = 20240301) -> pd.DataFrame:
    """Events of N_LOGS logs: a few users each, bursts of events (so gaps near 30 min occur), some session ids."""
    rng = np.random.default_rng(seed)
    frames = []
    for log in range(N_LOGS):
        n_users = int(rng.integers(1, 8))
        n = int(rng.integers(1, 60))
        user = rng.integers(0, n_users, n)
        # burst starts within 20 days, offsets of 0..90 min at whole minutes (exact 30-min gaps happen)
        burst = rng.integers(0, 20 * 24 * 6, n) * 600
        offset = rng.integers(0, 91, n) * 60
        names = np.array(PV_NAMES + OTHER_NAMES)[rng.choice(6, n, p=[.35, .15, .1, .2, .1, .1])]
        sid = np.where(rng.random(n) < 0.2, np.char.add("s", rng.integers(0, 3, n).astype(str)), None)
        frames.append(pd.DataFrame({
            "log": log, "user": [f"l{log}u{u}" for u in user],
            "time": SPAN_START + pd.to_timedelta(burst + offset, unit="s"),
            "name": names, "sid": sid}))
    df = pd.concat(frames, ignore_index=True)
    df["event_id"] = [f"e{i}" for i in range(len(df))]
    df["key"] = [f"log{log:03d}" for log in df["log"]]
    return df


@pytest.fixture(params=["stored", "scanned"], autouse=True)
def read_path(request, monkeypatch):
    """Every test runs twice: once reading the session rollups the load keeps (what a query over every event
    with the default gap and page-view events reads), once deriving the sessions from the events."""
    decided = []
    real = traffic._holds_every_event

    def holds(p, span):
        decided.append(real(p, span) and request.param == "stored")
        return decided[-1]

    monkeypatch.setattr(traffic, "_holds_every_event", holds)
    yield request.param
    assert decided and all(d == (request.param == "stored") for d in decided)


@pytest.fixture(scope="module")
def logs():
    return random_logs()


@pytest.fixture(scope="module")
def loaded(logs):
    con = store.connect(":memory:")
    frame = pd.DataFrame({
        "event_id": logs["event_id"], "user_id": logs["user"], "event_name": logs["name"],
        "event_time": logs["time"].dt.strftime("%Y-%m-%d %H:%M:%S"), "session_id": logs["sid"],
        "channel": None, "campaign": logs["key"], "page": logs["key"], "revenue": None, "properties": None,
    }).astype(object)
    report = store.load_events(con, frame)
    assert report.loaded == len(logs)
    yield con
    con.close()


def local_period(times: pd.Series, tz: str, period: str) -> pd.Series:
    local = times.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    if period == "week":
        local = local - pd.to_timedelta(local.dt.weekday, unit="D")
    return local


def pandas_pv_uv(logs: pd.DataFrame, tz: str, period: str) -> pd.DataFrame:
    views = logs[logs["name"].isin(PV_NAMES)].copy()
    views["period_start"] = local_period(views["time"], tz, period)
    out = views.groupby(["key", "period_start"]).agg(pv=("name", "size"), uv=("user", "nunique")).reset_index()
    return out.sort_values(["key", "period_start"]).reset_index(drop=True)


def ours_pv_uv(con, tz: str, period: str) -> pd.DataFrame:
    got = pv_uv(con, TrafficParams(period=period, timezone=tz, breakdown="page", top_n=10_000))
    got = got.rename(columns={"page": "key"})[["key", "period_start", "pv", "uv"]]
    return got.sort_values(["key", "period_start"]).reset_index(drop=True)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
@pytest.mark.parametrize("period", ["day", "week"])
def test_pv_uv_matches_pandas(logs, loaded, tz, period):
    ours = ours_pv_uv(loaded, tz, period)
    expected = pandas_pv_uv(logs, tz, period)
    assert len(expected) > 1000 if period == "day" else len(expected) > 500
    pd.testing.assert_frame_equal(ours, expected, check_dtype=False)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_pv_uv_per_day_matches_clickhouse(logs, loaded, tz):
    chdb = pytest.importorskip("chdb")
    src = pd.DataFrame({  # noqa: F841 -- read by chdb's Python() table function
        "key": logs["key"], "user": logs["user"], "name": logs["name"],
        "us": (logs["time"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(microseconds=1)})
    names = ", ".join(f"'{n}'" for n in PV_NAMES)
    ch = chdb.query(f"""
        SELECT key, toDate(fromUnixTimestamp64Micro(us, '{tz}')) AS period_start,
               count() AS pv, uniqExact(user) AS uv
        FROM Python(src) WHERE name IN ({names})
        GROUP BY key, period_start ORDER BY key, period_start""", "DataFrame")
    ch["period_start"] = pd.to_datetime(ch["period_start"]).astype("datetime64[us]")
    ours = ours_pv_uv(loaded, tz, "day")
    pd.testing.assert_frame_equal(ours, ch.astype({"pv": "int64", "uv": "int64"}), check_dtype=False)


def pandas_sessions(logs: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Sessions per (log, first day) and their bounces, from SPEC §5 read literally."""
    df = logs.sort_values(["user", "time", "event_id"]).copy()
    has_id = df["sid"].notna()
    derived = df[~has_id].copy()
    new = derived.groupby("user")["time"].diff().isna() | (derived.groupby("user")["time"].diff() > GAP)
    derived["session"] = "gap" + new.groupby(derived["user"]).cumsum().astype(str)
    with_id = df[has_id].copy()
    with_id["session"] = "id" + with_id["sid"]
    both = pd.concat([derived, with_id])
    both["is_pv"] = both["name"].isin(PV_NAMES)
    per = both.groupby(["key", "user", "session"]).agg(start=("time", "min"), pvs=("is_pv", "sum")).reset_index()
    per["period_start"] = local_period(per["start"], tz, "day")
    out = per.groupby(["key", "period_start"]).agg(
        sessions=("session", "size"), bounces=("pvs", lambda s: (s == 1).sum()),
        viewed=("pvs", lambda s: (s >= 1).sum())).reset_index()
    return out.sort_values(["key", "period_start"]).reset_index(drop=True)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_sessions_and_bounces_match_pandas(logs, loaded, tz):
    got = sessions(loaded, TrafficParams(timezone=tz, breakdown="campaign", top_n=10_000))
    got = got.rename(columns={"campaign": "key"}).sort_values(["key", "period_start"]).reset_index(drop=True)
    expected = pandas_sessions(logs, tz)
    assert got[["key", "period_start"]].equals(expected[["key", "period_start"]].astype(got[["key", "period_start"]].dtypes))
    assert (got["sessions"].to_numpy() == expected["sessions"].to_numpy()).all()
    rate = expected["bounces"] / expected["viewed"].where(expected["viewed"] > 0)
    np.testing.assert_allclose(got["bounce_rate"].to_numpy(dtype=float), rate.to_numpy(dtype=float), equal_nan=True)
