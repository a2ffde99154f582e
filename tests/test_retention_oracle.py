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
