"""Time every public metric function on the bundled sample data (median of N runs, cold DuckDB caches
aside — metrics keep no caches of their own).

    python bench/metric_timings.py [--runs 5] [--db PATH] [--only funnel]

Loads the sample data into a temporary database unless ``--db`` names one that already holds it.
Besides wall time each line shows the process CPU time (all DuckDB threads): on a busy machine wall
times swing with the other load, CPU time much less.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import store  # noqa: E402
from metrics import economics, funnel, referral, retention, saturation, stages, traffic, value_cost  # noqa: E402
from metrics.selectors import Step  # noqa: E402


def calls():
    fp = funnel.FunnelParams(steps=(Step("page_view"), Step("signup"), Step("activate"), Step("purchase")))
    tp = traffic.TrafficParams(period="day")
    ep = economics.EconomicsParams()
    sp = saturation.SaturationParams()
    ap = stages.AarrrParams()
    rp = retention.RetentionParams()
    model = None

    def model_():
        nonlocal model
        if model is None:
            model = value_cost.default_model(con_)
        return model

    return {
        "funnel.funnel (4 steps, ordered)": lambda c: funnel.funnel(c, fp),
        "funnel.funnel (strict)": lambda c: funnel.funnel(c, funnel.FunnelParams(steps=fp.steps, order="strict")),
        "funnel.funnel (any order)": lambda c: funnel.funnel(c, funnel.FunnelParams(steps=fp.steps, order="any")),
        "funnel.funnel (breakdown channel)": lambda c: funnel.funnel(c, funnel.FunnelParams(steps=fp.steps, breakdown="channel")),
        "funnel.funnel (entry breakdown)": lambda c: funnel.funnel(c, funnel.FunnelParams(
            steps=fp.steps, breakdown="channel", breakdown_attribution="entry")),
        "funnel.funnel (exclusion)": lambda c: funnel.funnel(c, funnel.FunnelParams(
            steps=fp.steps, exclusions=(funnel.Exclusion("refund", from_step=1, to_step=3),))),
        # steps one event could fill twice: the general path (ordered), rank blocks (strict), matchings (any)
        "funnel.funnel (page_view → signup → page_view)": lambda c: funnel.funnel(c, funnel.FunnelParams(
            steps=(Step("page_view"), Step("signup"), Step("page_view")))),
        "funnel.funnel (strict, page_view → signup → page_view)": lambda c: funnel.funnel(c, funnel.FunnelParams(
            steps=(Step("page_view"), Step("signup"), Step("page_view")), order="strict")),
        "funnel.funnel (any order, page_view twice)": lambda c: funnel.funnel(c, funnel.FunnelParams(
            steps=(Step("page_view"), Step("signup"), Step("page_view")), order="any")),
        "funnel.funnel (any order, overlapping steps)": lambda c: funnel.funnel(c, funnel.FunnelParams(
            steps=(Step("page_view"), Step("page_view", {"page": "/pricing"}), Step("signup")), order="any")),
        "funnel.funnel_users (dropped at 2)": lambda c: funnel.funnel_users(c, fp, 2, "dropped"),
        "retention.retention (week)": lambda c: retention.retention(c, rp),
        "retention.retention (day, rolling)": lambda c: retention.retention(c, retention.RetentionParams(period="day", periods=30, alignment="rolling")),
        "retention.retention (month, breakdown)": lambda c: retention.retention(c, retention.RetentionParams(period="month", periods=4, breakdown="channel")),
        "retention.active_users": lambda c: retention.active_users(c),
        "retention.lifecycle": lambda c: retention.lifecycle(c),
        "traffic.pv_uv (day)": lambda c: traffic.pv_uv(c, tp),
        "traffic.pv_uv (week, by page)": lambda c: traffic.pv_uv(c, traffic.TrafficParams(period="week", breakdown="page")),
        "traffic.pv_uv (day, by channel)": lambda c: traffic.pv_uv(c, traffic.TrafficParams(period="day", breakdown="channel")),
        "traffic.sessions (by channel)": lambda c: traffic.sessions(c, traffic.TrafficParams(breakdown="channel")),
        "traffic.session_table": lambda c: traffic.session_table(c, tp),
        "traffic.sessions": lambda c: traffic.sessions(c, tp),
        "traffic.top_pages": lambda c: traffic.top_pages(c, tp),
        "traffic.traffic_summary": lambda c: traffic.traffic_summary(c, tp),
        "stages.stage_map": lambda c: stages.stage_map(c),
        "stages.aarrr": lambda c: stages.aarrr(c, ap),
        "stages.revenue_summary": lambda c: stages.revenue_summary(c, ap),
        "stages.revenue_page": lambda c: stages.revenue_page(c, ap),
        "economics.campaign_economics": lambda c: economics.campaign_economics(c, ep),
        "economics.economics_levels": lambda c: economics.economics_levels(c, ep),
        "economics.acquisition_returns": lambda c: economics.acquisition_returns(c, ep),
        "economics.ltv_curves": lambda c: economics.ltv_curves(c, ep),
        "economics.spend_coverage_summary": lambda c: economics.spend_coverage_summary(c),
        "economics.campaign_vs_retention": lambda c: economics.campaign_vs_retention(c, ep),
        "saturation.channel_saturation": lambda c: saturation.channel_saturation(c, sp),
        "referral.referral": lambda c: referral.referral(c),
        "referral.referral_summary": lambda c: referral.referral_summary(c),
        "referral.referral_page": lambda c: referral.referral_page(c),
        "value_cost.score (rival)": lambda c: value_cost.score(c, model_(), rival="brightcart"),
        "value_cost.dimension_scores": lambda c: value_cost.dimension_scores(c, model_(), rival="brightcart"),
    }


con_ = None


def main() -> int:
    global con_
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", default=None)
    parser.add_argument("--only", default="", help="time only the calls whose name contains this text")
    args = parser.parse_args()
    path = args.db or str(Path(tempfile.mkdtemp()) / "sample.duckdb")
    con_ = store.connect(path)
    store.ensure_sample_data(con_)
    events = con_.execute("SELECT count(*) FROM events").fetchall()[0][0]
    print(f"{events:,} events; median of {args.runs} runs")
    worst = 0.0
    for name, fn in calls().items():
        if args.only not in name:
            continue
        times, cpu = [], []
        for _ in range(args.runs):
            t, c = time.perf_counter(), time.process_time()
            fn(con_)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        med = statistics.median(times)
        worst = max(worst, med)
        print(f"{name:<42} {med * 1000:8.0f} ms   cpu {statistics.median(cpu) * 1000:6.0f} ms")
    print(f"slowest: {worst * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
