"""The benchmark's tasks on each engine, all over the same CSV.

Tasks (the same definitions everywhere; results are compared before any time is reported):
- ``funnel``: a 4-step ordered funnel page_view → signup → activate → purchase with a 7-day window,
  every step-1 event starting an attempt (a user counts at the furthest step any attempt reached);
  result: users reaching each step.
- ``retention``: weekly first-time retention over UTC Monday weeks, 12 cohorts ending with the
  week of the last event, periods 0..11; result: (cohort, period, retained) for cells that have
  started by the end of the data.
- ``pv_uv``: daily (UTC) page views and distinct page-viewing users over the whole range.

Engines: ``ours`` (opsfunnel's metrics over its store), ``chdb`` (ClickHouse: windowFunnel,
retention, uniqExact over a MergeTree table ordered by user and time), ``polars`` (lazy queries on
an in-memory frame), ``pandas`` (straightforward code). Loading data into an engine is set-up and is
not timed, except for the ingest task that compares our loader with a bare DuckDB ``read_csv``.
"""
from __future__ import annotations

import time
from datetime import timedelta

HEADERS = ("distinct_id", "event", "timestamp", "utm_source", "utm_campaign", "page_url", "session_id",
           "amount", "inviter_id", "platform")
STEPS = ("page_view", "signup", "activate", "purchase")
WINDOW_S = 7 * 86400
PERIODS = 12


def _timed(fn, runs: int):
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


# --------------------------------------------------------------------------------------------
# ours
# --------------------------------------------------------------------------------------------

class Ours:
    name = "ours"

    def __init__(self, db_path: str, csv_path: str):
        import store
        self.con = store.connect(db_path)

    def funnel(self):
        from metrics.funnel import FunnelParams, Step, funnel
        df = funnel(self.con, FunnelParams(steps=tuple(Step(s) for s in STEPS), window=timedelta(seconds=WINDOW_S)))
        return [int(x) for x in df["users"]]

    def retention(self):
        from metrics.retention import RetentionParams, retention
        df = retention(self.con, RetentionParams(period="week", periods=PERIODS))
        df = df[df["retained"].notna()]
        return sorted((str(c.date()), int(p), int(r)) for c, p, r in zip(df["cohort"], df["period"], df["retained"]))

    def pv_uv(self):
        from metrics.traffic import TrafficParams, pv_uv
        df = pv_uv(self.con, TrafficParams(period="day"))
        return sorted((str(d.date()), int(p), int(u)) for d, p, u in zip(df["period_start"], df["pv"], df["uv"]))


# --------------------------------------------------------------------------------------------
# ClickHouse (chdb)
# --------------------------------------------------------------------------------------------

class Chdb:
    name = "chdb"

    def __init__(self, db_path: str, csv_path: str):
        from chdb import session
        self.s = session.Session(db_path)
        self.s.query("DROP TABLE IF EXISTS ev")
        self.s.query("""CREATE TABLE ev (user_id String, event LowCardinality(String), ts DateTime('UTC'))
                        ENGINE = MergeTree ORDER BY (user_id, ts)""")
        structure = ", ".join(f"{h} Nullable(String)" for h in HEADERS)
        self.s.query(f"""INSERT INTO ev SELECT distinct_id, event, parseDateTimeBestEffort(timestamp)
                         FROM file('{csv_path}', CSVWithNames, '{structure}')""")
        # merge the inserted parts now: ClickHouse's steady state, and no background merge running later,
        # while another engine's query is being timed
        self.s.query("OPTIMIZE TABLE ev FINAL")

    def _rows(self, sql):
        out = self.s.query(sql, "CSV").bytes().decode().strip()
        return [line.split(",") for line in out.splitlines() if line]

    def funnel(self):
        conds = ", ".join(f"event = '{s}'" for s in STEPS)
        rows = self._rows(f"""
            SELECT level, count() FROM (
                SELECT user_id, windowFunnel({WINDOW_S})(ts, {conds}) AS level
                FROM ev WHERE event IN ({', '.join(f"'{s}'" for s in STEPS)}) GROUP BY user_id)
            GROUP BY level""")
        by_level = {int(level): int(n) for level, n in rows}
        return [sum(n for level, n in by_level.items() if level >= k) for k in range(1, len(STEPS) + 1)]

    def retention(self):
        conds = ", ".join(f"w = c + {7 * k}" for k in range(PERIODS))
        rows = self._rows(f"""
            WITH (SELECT toMonday(max(ts)) FROM ev) AS last_week,
                 first AS (SELECT user_id, toMonday(min(ts)) AS c FROM ev GROUP BY user_id)
            SELECT c, k - 1 AS period, sum(r[k]) AS retained FROM (
                SELECT f.c AS c, retention({conds}) AS r
                FROM (SELECT user_id, toMonday(ts) AS w FROM ev) AS e
                INNER JOIN first AS f USING (user_id)
                WHERE f.c > last_week - {7 * PERIODS}
                GROUP BY e.user_id, f.c)
            ARRAY JOIN arrayEnumerate(r) AS k
            WHERE c + 7 * (k - 1) <= last_week
            GROUP BY c, k ORDER BY c, k""")
        return sorted((c.strip('"'), int(p), int(r)) for c, p, r in rows)

    def pv_uv(self):
        rows = self._rows("""SELECT toDate(ts) AS d, count() AS pv, uniqExact(user_id) AS uv
                             FROM ev WHERE event = 'page_view' GROUP BY d ORDER BY d""")
        return sorted((d.strip('"'), int(p), int(u)) for d, p, u in rows)


# --------------------------------------------------------------------------------------------
# polars
# --------------------------------------------------------------------------------------------

class Polars:
    name = "polars"

    def __init__(self, db_path: str, csv_path: str):
        import polars as pl
        self.pl = pl
        self.df = (pl.scan_csv(csv_path, infer_schema=False)
                   .select(pl.col("distinct_id").alias("user_id"), pl.col("event"),
                           pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%z").dt.convert_time_zone("UTC")
                           .dt.replace_time_zone(None).alias("ts"))
                   .collect())

    def funnel(self):
        pl = self.pl
        lf = self.df.lazy()
        steps = [lf.filter(pl.col("event") == s).select("user_id", pl.col("ts").alias(f"t{i}")).sort(f"t{i}")
                 for i, s in enumerate(STEPS)]
        att = steps[0].with_columns(pl.col("t0").alias("start"))
        for i in range(1, len(STEPS)):
            att = att.join_asof(steps[i], left_on=f"t{i - 1}", right_on=f"t{i}", by="user_id", strategy="forward")
            att = att.with_columns(pl.when(pl.col(f"t{i}") <= pl.col("start") + timedelta(seconds=WINDOW_S))
                                   .then(pl.col(f"t{i}")).alias(f"t{i}")).sort(f"t{i}", nulls_last=True)
        level = sum(pl.col(f"t{i}").is_not_null().cast(pl.Int32) for i in range(len(STEPS)))
        users = att.group_by("user_id").agg(level.max().alias("level")).collect()
        return [int((users["level"] >= k).sum()) for k in range(1, len(STEPS) + 1)]

    def retention(self):
        pl = self.pl
        lf = self.df.lazy().select("user_id", pl.col("ts").dt.truncate("1w").alias("w"))
        last = self.df["ts"].max()
        last_week = self.pl.Series([last]).dt.truncate("1w")[0]
        first = lf.group_by("user_id").agg(pl.col("w").min().alias("c"))
        cells = (lf.unique().join(first, on="user_id")
                 .with_columns(((pl.col("w") - pl.col("c")).dt.total_days() // 7).alias("period"))
                 .filter((pl.col("c") > last_week - timedelta(weeks=PERIODS)) & (pl.col("period") < PERIODS))
                 .group_by("c", "period").agg(pl.len().alias("retained")).collect())
        return sorted((str(c.date()), int(p), int(r)) for c, p, r in cells.iter_rows())

    def pv_uv(self):
        pl = self.pl
        out = (self.df.lazy().filter(pl.col("event") == "page_view")
               .group_by(pl.col("ts").dt.date().alias("d"))
               .agg(pl.len().alias("pv"), pl.col("user_id").n_unique().alias("uv")).collect())
        return sorted((str(d), int(p), int(u)) for d, p, u in out.iter_rows())


# --------------------------------------------------------------------------------------------
# pandas
# --------------------------------------------------------------------------------------------

class Pandas:
    name = "pandas"

    def __init__(self, db_path: str, csv_path: str):
        import pandas as pd
        self.pd = pd
        df = pd.read_csv(csv_path, usecols=["distinct_id", "event", "timestamp"], dtype=str)
        df["ts"] = pd.to_datetime(df["timestamp"], utc=True).dt.tz_localize(None)
        self.df = df.rename(columns={"distinct_id": "user_id"})[["user_id", "event", "ts"]]

    def funnel(self):
        pd = self.pd
        df = self.df
        att = df[df["event"] == STEPS[0]][["user_id", "ts"]].rename(columns={"ts": "t0"}).sort_values("t0")
        att["start"] = att["t0"]
        for i in range(1, len(STEPS)):
            nxt = df[df["event"] == STEPS[i]][["user_id", "ts"]].rename(columns={"ts": f"t{i}"}).sort_values(f"t{i}")
            left = att[att[f"t{i - 1}"].notna()].sort_values(f"t{i - 1}")
            merged = pd.merge_asof(left, nxt, left_on=f"t{i - 1}", right_on=f"t{i}", by="user_id",
                                   direction="forward")
            merged.loc[merged[f"t{i}"] > merged["start"] + pd.Timedelta(seconds=WINDOW_S), f"t{i}"] = pd.NaT
            att = pd.concat([merged, att[att[f"t{i - 1}"].isna()]])
        att["level"] = sum(att[f"t{i}"].notna().astype(int) for i in range(len(STEPS)))
        level = att.groupby("user_id")["level"].max()
        return [int((level >= k).sum()) for k in range(1, len(STEPS) + 1)]

    def retention(self):
        pd = self.pd
        df = self.df
        w = df["ts"].dt.to_period("W-SUN").dt.start_time
        pairs = pd.DataFrame({"user_id": df["user_id"], "w": w}).drop_duplicates()
        first = pairs.groupby("user_id")["w"].min().rename("c")
        pairs = pairs.join(first, on="user_id")
        pairs["period"] = (pairs["w"] - pairs["c"]).dt.days // 7
        last_week = w.max()
        pairs = pairs[(pairs["c"] > last_week - pd.Timedelta(weeks=PERIODS)) & (pairs["period"] < PERIODS)]
        cells = pairs.groupby(["c", "period"]).size()
        return sorted((str(c.date()), int(p), int(r)) for (c, p), r in cells.items())

    def pv_uv(self):
        df = self.df[self.df["event"] == "page_view"]
        g = df.groupby(df["ts"].dt.date)["user_id"].agg(["size", "nunique"])
        return sorted((str(d), int(p), int(u)) for d, (p, u) in g.iterrows())


ENGINES = {"ours": Ours, "chdb": Chdb, "polars": Polars, "pandas": Pandas}
TASKS = ("funnel", "retention", "pv_uv")
