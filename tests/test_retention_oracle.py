"""Differential test: our first-time calendar retention (criterion ``on``) against ClickHouse ``retention()``.

Logs: 240 seeded random event logs (numpy seed 20241121), each 2–8 users with 1–12 events named ``a`` or
``b`` at uniformly random seconds over 2024-01-01 .. 2024-01-28 UTC. All logs are loaded into one store,
users prefixed by their log, every event carrying its log id as the property ``log``.

Ours: one ``retention()`` call per configuration with ``breakdown="log"`` (every event of a user has the
same log, so the breakdown is exactly a per-log report), plus one call without a breakdown (the sum over
all logs, which goes through the ``users.first_seen`` path when the start event is "any event").

Oracle: chdb (embedded ClickHouse) over the same raw rows, read from a Parquet file, never from our SQL.
Per (log, user): d0 = the first start-event period (``min`` over the user's start events, in the report
time zone); ``retention(cond0, cond1, ..., condN)`` with cond0 = a start event in d0 and condk = a return
event in d0 + k periods; cohort size = sum of r[0], retained_k = sum of r[k], per (log, d0).

Compared, for every configuration (day / Monday weeks / Sunday weeks; UTC, Asia/Shanghai,
America/New_York; start and return "any event" or ``a`` → ``b``):
- cohort_size and every non-null retained cell, per log and summed over logs;
- nulls exactly where the cell's period starts after the data end's period (ClickHouse has 0 there:
  nothing happens after the data end);
- cohorts ClickHouse finds in the report's range that we lack (none allowed).

Second oracle, for the options ClickHouse's ``retention()`` has no form for (recurring cohorts,
``on_or_after``, minimum occurrences, rolling periods and their cohort-level censoring): a straight-line
pandas re-implementation of the SPEC §4 wording over the same raw rows (merges and group-bys, its own period
arithmetic), compared on the same 240 logs for 9 configurations: cohort sizes, every started cell's
retained count, which cells are null, and every ``complete`` flag.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import chdb
import numpy as np
import pandas as pd
import pytest

import store
from metrics.retention import RetentionParams, period_index, retention
from metrics.selectors import Step

SEED = 20241121
LOGS = 240
T0 = datetime(2024, 1, 1)
SPAN_S = 28 * 86400


def random_logs() -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    rows = []
    for log in range(LOGS):
        for u in range(int(rng.integers(2, 9))):
            n = int(rng.integers(1, 13))
            secs = rng.integers(0, SPAN_S, size=n)
            names = rng.choice(["a", "b"], size=n)
            for s, name in zip(secs, names):
                rows.append((log, f"L{log}-u{u}", str(name), T0 + timedelta(seconds=int(s))))
    return pd.DataFrame(rows, columns=["log_id", "user_id", "event_name", "event_time"])


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    raw = random_logs()
    con = store.connect(":memory:")
    frame = pd.DataFrame({"user_id": raw["user_id"], "event_name": raw["event_name"],
                          "event_time": raw["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
                          "log": raw["log_id"].map(lambda i: f"{i:03d}")})
    report = store.load_events(con, frame)
    assert report.rejected == 0 and report.loaded == len(raw)
    path = tmp_path_factory.mktemp("oracle") / "events.parquet"
    raw.to_parquet(path, index=False)
    yield con, raw, str(path)
    con.close()


def clickhouse_retention(path: str, period: str, week_start: str, tz: str, periods: int,
                         start: str | None, ret: str | None) -> pd.DataFrame:
    """Per (log_id, cohort, period): cohort_size and retained, from ClickHouse's retention()."""
    if period == "day":
        bucket = f"toDate(t, '{tz}')"
        shift = "addDays"
    else:
        bucket = f"toStartOfWeek(t, {0 if week_start == 'sunday' else 1}, '{tz}')"
        shift = "addWeeks"
    is_start = f"event_name = '{start}'" if start else "1"
    is_ret = f"event_name = '{ret}'" if ret else "1"
    conds = [f"({is_start}) AND p = d0"] + [f"({is_ret}) AND p = {shift}(d0, {k})" for k in range(1, periods)]
    sql = f"""
        WITH ev AS (
            SELECT log_id, user_id, event_name, toDateTime64(event_time, 6, 'UTC') AS t, {bucket} AS p
            FROM file('{path}', Parquet, 'log_id Int64, user_id String, event_name String, event_time DateTime64(6)')
        ),
        firsts AS (SELECT log_id, user_id, min(p) AS d0 FROM ev WHERE {is_start} GROUP BY log_id, user_id)
        SELECT log_id, d0, sumForEach(r) AS cells
        FROM (
            SELECT ev.log_id AS log_id, ev.user_id AS user_id, f.d0 AS d0, retention({', '.join(conds)}) AS r
            FROM ev JOIN firsts f ON ev.log_id = f.log_id AND ev.user_id = f.user_id
            GROUP BY ev.log_id, ev.user_id, f.d0
        )
        GROUP BY log_id, d0
    """
    res = chdb.query(sql, "DataFrame")
    rows = []
    for log_id, d0, cells in res.itertuples(index=False):  # one row per (log, cohort): small
        for k in range(periods):
            rows.append((f"{int(log_id):03d}", pd.Timestamp(d0), k, int(cells[0]), int(cells[k])))
    return pd.DataFrame(rows, columns=["breakdown", "cohort", "period", "ch_size", "ch_retained"])


CONFIGS = [
    # period, week_start, timezone, periods, start, return
    ("day", "monday", "UTC", 14, None, None),
    ("day", "monday", "Asia/Shanghai", 10, "a", "b"),
    ("week", "monday", "UTC", 4, None, None),
    ("week", "sunday", "America/New_York", 4, "a", "b"),
    ("week", "monday", "Asia/Shanghai", 3, "a", None),
]


@pytest.mark.parametrize("period, week_start, tz, periods, start, ret", CONFIGS)
def test_matches_clickhouse_retention(logs, period, week_start, tz, periods, start, ret):
    con, raw, path = logs
    params = RetentionParams(start=Step(start) if start else None, returning=Step(ret) if ret else None,
                             period=period, periods=periods, week_start=week_start, timezone=tz)
    ours = retention(con, replace(params, breakdown="log"))
    oracle = clickhouse_retention(path, period, week_start, tz, periods, start, ret)

    data_end = pd.Timestamp(raw["event_time"].max()).tz_localize("UTC").tz_convert(tz).tz_localize(None)
    end_idx = period_index(data_end.to_pydatetime(), period, week_start)
    cohort_idx = ours["cohort"].map(lambda c: period_index(c.to_pydatetime(), period, week_start))
    future = (cohort_idx + ours["period"]) > end_idx
    assert (ours["retained"].isna() == future).all()
    assert ours.loc[ours["cohort_size"] > 0, "cohort_size"].sum() > 0

    merged = ours.merge(oracle, on=["breakdown", "cohort", "period"], how="left")
    merged[["ch_size", "ch_retained"]] = merged[["ch_size", "ch_retained"]].fillna(0).astype("int64")
    assert (merged["cohort_size"] == merged["ch_size"]).all()
    known = merged[~future.to_numpy()]
    assert (known["retained"].astype("int64") == known["ch_retained"]).all()
    assert (merged.loc[future.to_numpy(), "ch_retained"] == 0).all()
    # every cohort ClickHouse puts in the report's range is in ours
    in_range = oracle[oracle["cohort"].isin(set(ours["cohort"]))]
    assert set(map(tuple, in_range[["breakdown", "cohort"]].values)) <= set(
        map(tuple, ours.loc[ours["cohort_size"] > 0, ["breakdown", "cohort"]].values))
    # non-trivial: retained users exist in this configuration
    assert known.loc[known["period"] > 0, "retained"].sum() > 0

    # without a breakdown: the sum over logs
    total = retention(con, params)
    summed = merged.groupby(["cohort", "period"], as_index=False)[["ch_size", "ch_retained"]].sum()
    both = total.merge(summed, on=["cohort", "period"], how="left").fillna({"ch_size": 0, "ch_retained": 0})
    assert (both["cohort_size"] == both["ch_size"]).all()
    ok = both["retained"].notna()
    assert (both.loc[ok, "retained"].astype("int64") == both.loc[ok, "ch_retained"]).all()


# -- a second oracle: a straight-line pandas re-implementation, for every option ClickHouse lacks -----------

ROLLING_LEN = {"day": pd.Timedelta(days=1), "week": pd.Timedelta(days=7), "month": pd.Timedelta(days=30)}


def local_index(local: pd.Series, period: str, week_start: str) -> pd.Series:
    """Calendar period index of naive local times, computed independently of the metric module."""
    days = (local.dt.normalize() - pd.Timestamp("1970-01-01")).dt.days
    if period == "day":
        return days
    if period == "week":
        return (days - (4 if week_start == "monday" else 3)) // 7  # 1970-01-05 is a Monday, 01-04 a Sunday
    return (local.dt.year - 1970) * 12 + local.dt.month - 1


def pandas_retention(raw: pd.DataFrame, *, period, week_start, tz, periods, mode, criterion, minimum, alignment,
                     start, ret) -> pd.DataFrame:
    """Per (log, cohort index, k): cohort_size, retained, started, complete -- by the SPEC §4 words."""
    ev = raw.copy()
    ev["local"] = ev["event_time"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    ev["p"] = local_index(ev["local"], period, week_start)
    data_end = ev["event_time"].max()
    end_idx = int(local_index(ev.loc[ev["event_time"] == data_end, "local"].head(1), period, week_start).iloc[0])
    first = end_idx - periods + 1
    starts = ev[ev["event_name"] == start] if start else ev
    rets = ev[ev["event_name"] == ret] if ret else ev
    if mode == "first_time":
        mem = starts.sort_values("event_time").groupby(["log_id", "user_id"], as_index=False).first()
    else:
        mem = starts.groupby(["log_id", "user_id", "p"], as_index=False)["event_time"].min()
    mem = mem.rename(columns={"p": "c", "event_time": "t0"})[["log_id", "user_id", "c", "t0"]]
    mem = mem[(mem["c"] >= first) & (mem["c"] <= end_idx)]
    j = mem.merge(rets[["log_id", "user_id", "p", "event_time"]], on=["log_id", "user_id"])
    if alignment == "calendar":
        j["k"] = j["p"] - j["c"]
    else:
        j = j[j["event_time"] >= j["t0"]]
        j["k"] = (j["event_time"] - j["t0"]) // ROLLING_LEN[period]
    j = j[j["k"] >= 1]
    per_k = j.groupby(["log_id", "user_id", "c", "k"]).size().rename("n").reset_index()
    qual = per_k[per_k["n"] >= minimum]
    sizes = mem.groupby(["log_id", "c"]).agg(cohort_size=("user_id", "size"), t0_min=("t0", "min"),
                                             t0_max=("t0", "max")).reset_index()
    grid = sizes.merge(pd.DataFrame({"k": range(periods)}), how="cross")
    if criterion == "on":
        counts = qual.groupby(["log_id", "c", "k"]).size().rename("retained").reset_index()
    else:
        last = qual.groupby(["log_id", "user_id", "c"])["k"].max().rename("last").reset_index()
        counts = pd.concat([last[last["last"] >= k].groupby(["log_id", "c"]).size().rename("retained")
                            .reset_index().assign(k=k) for k in range(1, periods)])
    grid = grid.merge(counts, on=["log_id", "c", "k"], how="left").fillna({"retained": 0})
    grid.loc[grid["k"] == 0, "retained"] = grid["cohort_size"]
    if alignment == "calendar":
        grid["started"] = grid["c"] + grid["k"] <= end_idx
        grid["complete"] = grid["c"] + grid["k"] < end_idx
    else:
        length = ROLLING_LEN[period]
        grid["started"] = grid["t0_min"] + grid["k"] * length <= data_end
        grid["complete"] = grid["t0_max"] + (grid["k"] + 1) * length <= data_end
    return grid


PANDAS_CONFIGS = [
    # period, week_start, tz, periods, mode, criterion, minimum, alignment, start, return
    ("day", "monday", "UTC", 10, "recurring", "on", 1, "calendar", None, None),
    ("day", "monday", "Asia/Shanghai", 8, "recurring", "on_or_after", 2, "calendar", "a", "b"),
    ("week", "sunday", "UTC", 4, "recurring", "on", 2, "calendar", None, "b"),
    ("day", "monday", "UTC", 10, "first_time", "on_or_after", 1, "calendar", None, None),
    ("week", "monday", "America/New_York", 4, "first_time", "on", 3, "calendar", "a", None),
    ("day", "monday", "UTC", 10, "first_time", "on", 1, "rolling", None, None),
    ("week", "monday", "Asia/Shanghai", 4, "first_time", "on_or_after", 2, "rolling", None, "b"),
    ("week", "monday", "UTC", 4, "recurring", "on", 1, "rolling", "a", None),
    ("week", "sunday", "Asia/Shanghai", 4, "recurring", "on_or_after", 1, "rolling", None, "b"),
]


@pytest.mark.parametrize("period, week_start, tz, periods, mode, criterion, minimum, alignment, start, ret",
                         PANDAS_CONFIGS)
def test_matches_a_straight_line_pandas_reimplementation(logs, period, week_start, tz, periods, mode, criterion,
                                                         minimum, alignment, start, ret):
    con, raw, _ = logs
    params = RetentionParams(start=Step(start) if start else None, returning=Step(ret) if ret else None,
                             period=period, periods=periods, week_start=week_start, timezone=tz, mode=mode,
                             criterion=criterion, minimum_occurrences=minimum, alignment=alignment, breakdown="log")
    ours = retention(con, params)
    ours = ours[ours["cohort_size"] > 0].copy()
    ours["log_id"] = ours["breakdown"].astype(int)
    ours["c"] = local_index(ours["cohort"], period, week_start)
    expected = pandas_retention(raw, period=period, week_start=week_start, tz=tz, periods=periods, mode=mode,
                                criterion=criterion, minimum=minimum, alignment=alignment, start=start, ret=ret)
    both = ours.merge(expected, how="outer", left_on=["log_id", "c", "period"], right_on=["log_id", "c", "k"], indicator=True,
                      suffixes=("", "_pd"))
    assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"].head()
    assert (both["cohort_size"] == both["cohort_size_pd"]).all()
    assert (both["retained"].notna() == both["started"]).all()
    assert (both["complete"] == both["complete_pd"]).all()
    known = both[both["started"]]
    assert (known["retained"].astype("int64") == known["retained_pd"].astype("int64")).all()
    assert known.loc[known["period"] > 0, "retained"].sum() > 0  # the configuration is not trivial
