"""Seeded generator for the bundled opsfunnel demo data.

Writes three files that exercise the whole product on one story (see ``sample_data/README.md``):

* ``events.csv.gz`` - an analytics export (export-style headers, +08:00 timestamps) of ~38k users over
  the 120 days 2026-07-04 .. 2026-10-31 (China time);
* ``spend.csv``     - daily ad spend per paid (channel, campaign), in CNY;
* ``survey.csv``    - perceived value / cost ratings for ``ours`` and the rival ``BrightCart``.

How the events are simulated (vectorised with numpy; Python loops only run over sources, event kinds,
referral generations and survey respondents):

1. Arrivals. Every paid campaign has a daily spend. New users per day are Poisson with mean
   ``spend / CAC`` (linear, not saturated), except channel ``baidu`` whose spend ramps up while users follow
   ``a * weekly_spend ** 0.45``. Organic and direct arrivals have a flat daily rate. Arrivals are lower on
   weekends; the time of day follows a Chinese consumer-app hourly profile.
2. Engagement. Each user draws a type from the campaign's mix (one-shot / short-lived / long-lived), a
   lifetime in days and a daily activity probability; active days are Bernoulli draws on a users x days grid
   (weekends damped), with rare resurrection after the lifetime.
3. Sessions. Day 0 is the arrival session (plus sometimes a second one); other active days get 1-4 sessions
   in distinct two-hour slots, so sessions are always more than 30 minutes apart.
4. Milestones. Sign-up, activation, purchases (with a few refunds), add-to-cart and invites are placed on
   sessions; sessions are expanded into ordered events with short gaps.
5. Referral. Converted invites become new users (utm_source ``referral``, ``inviter_id`` on their sign-up),
   simulated generation by generation until no invite converts inside the window.

Same seed -> byte-identical files: one ``numpy.random.Generator`` consumed in a fixed order, sorted rows,
fixed float formatting and gzip with ``mtime=0`` and no file name.
"""
from __future__ import annotations

import argparse
import gzip
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_SEED = 20261121
START = np.datetime64("2026-07-04T00:00:00")  # local (China, +08:00) midnight of day 0
N_DAYS = 120  # 2026-07-04 .. 2026-10-31
DAY = 86_400
RIVAL = "BrightCart"
TZ_SUFFIX = "+08:00"

# Day-of-week of day 0 (2026-07-04 is a Saturday); Monday = 0.
DOW = (np.arange(N_DAYS) + 5) % 7
WEEKEND = DOW >= 5
# Arrival factor (mean 1 over a week) and return-activity factor: weekends are quieter.
ARRIVAL_WF = np.where(WEEKEND, 0.80, 1.08)
ACTIVITY_WF = np.where(WEEKEND, 0.70, 1.0)

HOUR_W = np.array([0.30, 0.15, 0.10, 0.07, 0.07, 0.10, 0.30, 0.80, 1.20, 1.30, 1.30, 1.40,
                   1.80, 1.50, 1.20, 1.20, 1.20, 1.30, 1.40, 1.70, 2.10, 2.30, 1.90, 1.00])

BLOG = ["how-to-pick-a-rice-cooker", "autumn-skincare-routine", "budget-kitchen-upgrade", "618-deals-recap",
        "gift-guide-mid-autumn", "coffee-at-home", "small-apartment-storage", "back-to-school-essentials",
        "double-11-preview", "tea-brewing-basics", "pet-care-checklist", "travel-packing-list"]


@dataclass(frozen=True)
class Profile:
    """Engagement mix of a source: shares of one-shot / short / long users and their lifetimes."""
    one_shot: float
    short: float
    short_days: float
    long_days: float
    bounce: float       # share of arrival sessions that are a single page view
    signup: float       # sign-up multiplier on the per-type base rates
    activate: float     # activation multiplier
    payer: float        # paying multiplier
    aov: float          # median order value, CNY


@dataclass(frozen=True)
class Source:
    channel: str        # utm_source ('' = direct)
    campaign: str       # utm_campaign ('' = none)
    profile: Profile
    cac: float = 0.0    # target CAC (CNY per new user) of a linear paid campaign
    daily: float = 0.0  # typical new users/day (for baidu: at the start of the ramp)
    landing: tuple = ("/",)
    web_share: float = 0.25
    start_day: int = 0  # first day with spend and arrivals


CHURNY = Profile(0.62, 0.34, 3.5, 45, 0.60, 0.65, 0.50, 0.40, 55)
LOYAL = Profile(0.16, 0.26, 8.0, 200, 0.22, 1.20, 1.40, 1.35, 230)
GOOD = Profile(0.32, 0.40, 6.0, 110, 0.35, 1.00, 1.05, 1.00, 135)
AVERAGE = Profile(0.40, 0.40, 5.0, 80, 0.40, 0.95, 1.00, 0.90, 120)
MEH = Profile(0.47, 0.38, 4.5, 60, 0.45, 0.90, 0.90, 0.80, 105)

PROD = ("/product/",)
SOURCES = [
    Source("wechat", "wechat_moments_summer", AVERAGE, cac=18, daily=15, landing=("/", "/product/")),
    Source("wechat", "wechat_official_account", GOOD, cac=13, daily=14, landing=("/blog/", "/product/")),
    Source("wechat", "wechat_mini_program", AVERAGE, cac=16, daily=10, landing=PROD),
    Source("douyin", "douyin_flash_sale", CHURNY, cac=5.5, daily=46, landing=PROD),
    Source("douyin", "douyin_live_stream", MEH, cac=14, daily=16, landing=PROD),
    Source("xiaohongshu", "xhs_kol_review", LOYAL, cac=60, daily=14, landing=("/blog/", "/product/")),
    Source("xiaohongshu", "xhs_notes_seeding", GOOD, cac=24, daily=11, landing=("/blog/", "/product/")),
    # baidu search launches on Monday 2026-07-06, so its first spend week is a whole one
    Source("baidu", "baidu_brand_search", GOOD, daily=9.0, landing=("/", "/pricing"), web_share=0.55,
           start_day=2),
    Source("baidu", "baidu_generic_search", AVERAGE, daily=16.0, landing=("/", "/blog/", "/pricing"),
           web_share=0.55, start_day=2),
    Source("weibo", "weibo_hot_topic", MEH, cac=20, daily=9, landing=("/", "/product/")),
    Source("weibo", "weibo_fan_tunnel", AVERAGE, cac=26, daily=7, landing=PROD),
    Source("bilibili", "bilibili_creator_collab", GOOD, cac=30, daily=8, landing=("/blog/", "/product/")),
    Source("bilibili", "bilibili_anime_preroll", MEH, cac=22, daily=8, landing=("/", "/product/")),
    Source("organic", "", GOOD, daily=30.0, landing=("/", "/blog/"), web_share=0.45),
    Source("", "", AVERAGE, daily=22.0, landing=("/",), web_share=0.30),
    Source("referral", "invite_friend", GOOD, landing=("/", "/product/")),
]
REFERRAL = len(SOURCES) - 1
BAIDU_B = 0.45
BAIDU_WEEKLY = (3_000.0, 40_000.0)  # weekly baidu spend at the start and at the end
BAIDU_SPLIT = {"baidu_brand_search": 0.35, "baidu_generic_search": 0.65}
# How some spend rows spell their channel (the app must trim and case-fold).
SPEND_CHANNEL_SPELLING = {"wechat": "WeChat", "douyin": " Douyin", "bilibili": "Bilibili "}
UNMATCHED_CAMPAIGN = ("weibo", "weibo_test_banner")
# cost per click (CNY) and click-through rate per paid channel, for the awareness columns
CPC_CTR = {"douyin": (0.9, 0.012), "wechat": (1.6, 0.018), "xiaohongshu": (2.8, 0.025), "baidu": (3.5, 0.045),
           "weibo": (1.2, 0.010), "bilibili": (1.4, 0.015)}

# Per-type base rates: index 0 one-shot, 1 short, 2 long.
SIGNUP_BASE = np.array([0.22, 0.55, 0.78])
ACTIVATE_BASE = np.array([0.22, 0.50, 0.78])
PAYER_BASE = np.array([0.06, 0.28, 0.52])
INVITE_P = 0.26          # chance an activated user invites in a session after activation
INVITE_CONVERT = 0.30    # chance an invite turns into a sign-up


# --------------------------------------------------------------------------------------------------------------
# Arrivals and spend
# --------------------------------------------------------------------------------------------------------------
def _spend_and_arrivals(rng, scale):
    """Daily spend rows and the (source, day) of every non-referral arrival."""
    n_weeks = (N_DAYS + DOW[0]) // 7 + 1
    week_of_day = (np.arange(N_DAYS) + DOW[0]) // 7
    channels = sorted({s.channel for s in SOURCES if s.cac > 0})
    chan_mult = {c: rng.uniform(0.6, 1.4, n_weeks) for c in channels}

    # baidu: the weekly budget is raised every (Monday-based) week from lo to hi, by ~3k early and ~1k late;
    # flat within a week, so each week's users sit on a * spend ** b (daily noise added below)
    lo, hi = BAIDU_WEEKLY
    baidu_start = min(s.start_day for s in SOURCES if s.channel == "baidu")
    first_week, last_week = week_of_day[baidu_start], week_of_day[-1]
    ramp = 1 - (1 - ((week_of_day - first_week) / (last_week - first_week)).clip(0, 1)) ** 1.3
    baidu_weekly = np.where(np.arange(N_DAYS) >= baidu_start, lo + (hi - lo) * ramp, 0.0)

    spend_rows, arr_src, arr_day = [], [], []
    for si, s in enumerate(SOURCES):
        if si == REFERRAL:
            continue
        if s.channel == "baidu":
            share = BAIDU_SPLIT[s.campaign]
            noise = rng.lognormal(0.0, 0.08, N_DAYS)
            spend = baidu_weekly / 7 * share * noise
            # users/day = a * (7 * daily spend) ** b / 7, with a set so the start is s.daily users/day
            a = s.daily * 7 / (lo * share) ** BAIDU_B
            lam = a * (7 * spend) ** BAIDU_B / 7 * ARRIVAL_WF
        elif s.cac > 0:
            camp_mult = rng.uniform(0.8, 1.2, n_weeks)
            noise = rng.lognormal(0.0, 0.10, N_DAYS)
            spend = s.daily * s.cac * chan_mult[s.channel][week_of_day] * camp_mult[week_of_day] * noise
            lam = spend / s.cac * ARRIVAL_WF
        else:
            spend = None
            lam = np.full(N_DAYS, s.daily) * ARRIVAL_WF
        live = np.arange(N_DAYS) >= s.start_day
        counts = np.where(live, rng.poisson(lam * scale), 0)
        arr_src.append(np.full(counts.sum(), si))
        arr_day.append(np.repeat(np.arange(N_DAYS), counts))
        if spend is not None:
            spend = spend * scale
            cpc, ctr = CPC_CTR[s.channel]
            clicks = np.maximum(1, np.round(spend / (cpc * rng.lognormal(0, 0.1, N_DAYS)))).astype(np.int64)
            impressions = np.round(clicks / (ctr * rng.lognormal(0, 0.15, N_DAYS))).astype(np.int64)
            spend_rows.append(pd.DataFrame({
                "date": pd.date_range("2026-07-04", periods=N_DAYS, freq="D").strftime("%Y-%m-%d"),
                "channel": SPEND_CHANNEL_SPELLING.get(s.channel, s.channel),
                "campaign": s.campaign, "spend": np.round(spend, 2),
                "impressions": impressions, "clicks": clicks, "currency": "CNY"})[live])
    # a short test flight that never produced a tracked visit ("unmatched spend")
    test_days = pd.date_range("2026-09-14", periods=3, freq="D").strftime("%Y-%m-%d")
    test_spend = np.round(rng.uniform(120, 180, 3) * max(scale, 0.05), 2)
    spend_rows.append(pd.DataFrame({
        "date": test_days, "channel": UNMATCHED_CAMPAIGN[0], "campaign": UNMATCHED_CAMPAIGN[1],
        "spend": test_spend, "impressions": np.round(test_spend * 60).astype(np.int64),
        "clicks": np.round(test_spend / 2.5).astype(np.int64), "currency": "CNY"}))
    spend_df = pd.concat(spend_rows, ignore_index=True)
    spend_df = spend_df.sort_values(["date", "campaign"], kind="stable").reset_index(drop=True)
    return spend_df, np.concatenate(arr_src), np.concatenate(arr_day)


def _hour_times(rng, days):
    """Arrival time (seconds since day 0 local midnight) on the given days, following the hourly profile."""
    hours = rng.choice(24, size=len(days), p=HOUR_W / HOUR_W.sum())
    return days.astype(np.int64) * DAY + hours * 3600 + rng.integers(0, 3600, len(days))


# --------------------------------------------------------------------------------------------------------------
# Users -> sessions -> events
# --------------------------------------------------------------------------------------------------------------
def _simulate(rng, src, t0, inviter):
    """Simulate users with source index `src` arriving at `t0` (s). Returns events dict and invite list."""
    n = len(src)

    def pr(attr, idx=src):
        """Profile attribute of each user's (or session's) source."""
        return np.array([getattr(s.profile, attr) for s in SOURCES])[idx]

    u = rng.random(n)
    utype = np.where(u < pr("one_shot"), 0, np.where(u < pr("one_shot") + pr("short"), 1, 2))
    life = np.where(utype == 0, 0.0,
                    np.where(utype == 1, rng.exponential(pr("short_days")), rng.exponential(pr("long_days"))))
    q = np.where(utype == 1, rng.beta(3, 4, n), rng.beta(2, 5, n))
    d0 = t0 // DAY

    # ---- active days on a users x days grid
    k = np.arange(1, N_DAYS)
    day = d0[:, None] + k[None, :]
    valid = day < N_DAYS
    wf = ACTIVITY_WF[np.minimum(day, N_DAYS - 1)]
    p = np.where(k[None, :] <= life[:, None], q[:, None], 0.004) * wf
    active = valid & (rng.random(day.shape) < p)
    au, ak = np.nonzero(active)
    aday = d0[au] + ak + 1

    # sessions on later days: 1-4 in distinct two-hour slots (Gumbel top-k on the slots' weights). A session
    # starts within the first hour after its slot's start + a per-day phase of 0-60 min and lasts < 23 min, so
    # sessions are > 30 min apart. The 00:00-02:00 slot is left out: it keeps clear of a late arrival session
    # of the day before.
    nsess = np.minimum(1 + rng.poisson(0.25, len(au)), 4)
    slot_w = HOUR_W.reshape(12, 2).sum(axis=1)
    logw = np.log(np.where(np.arange(12) == 0, 1e-12, slot_w))
    keys = logw[None, :] + rng.gumbel(size=(len(au), 12))
    order = np.argsort(-keys, axis=1)
    phase = rng.integers(0, 3600, len(au))
    rep = np.repeat(np.arange(len(au)), nsess)
    nth = np.arange(len(rep)) - np.repeat(np.cumsum(nsess) - nsess, nsess)
    s_slot = order[rep, nth]
    s_user_later = au[rep]
    s_start_later = (aday[rep].astype(np.int64) * DAY + s_slot * 7200 + phase[rep]
                     + rng.integers(0, 3600, len(rep)))

    # day 0: arrival session, sometimes a second one 1-4 h later on the same day
    second = rng.random(n) < 0.18
    t2 = t0 + rng.integers(3600, 4 * 3600, n)
    second &= (t2 % DAY) <= 23 * 3600 + 30 * 60
    second &= (t2 // DAY) == d0
    s_user = np.concatenate([np.arange(n), np.nonzero(second)[0], s_user_later])
    s_start = np.concatenate([t0, t2[second], s_start_later])
    o = np.lexsort((s_start, s_user))
    s_user, s_start = s_user[o], s_start[o]
    ns = len(s_user)
    first_idx = np.searchsorted(s_user, np.arange(n))
    n_user_sess = np.bincount(s_user, minlength=n)
    s_rank = np.arange(ns) - first_idx[s_user]
    s_src = src[s_user]

    # ---- milestones (ranks of the session where they happen)
    is_ref = src == REFERRAL
    signs = is_ref | (rng.random(n) < np.minimum(0.97, SIGNUP_BASE[utype] * pr("signup")))
    later_signup = (~is_ref) & (rng.random(n) < 0.3) & (n_user_sess > 1)
    # a later sign-up happens in one of the next few sessions
    sig_rank = np.where(later_signup, np.minimum(n_user_sess - 1, rng.geometric(0.5, n)), 0)
    activates = signs & (rng.random(n) < np.minimum(0.97, ACTIVATE_BASE[utype] * pr("activate")))
    same = rng.random(n) < 0.45
    act_rank = np.where(same, sig_rank, np.minimum(n_user_sess - 1, sig_rank + rng.geometric(0.55, n)))
    payer = signs & (rng.random(n) < np.minimum(0.95, PAYER_BASE[utype] * pr("payer")))

    su = s_user
    s_signup = signs[su] & (s_rank == sig_rank[su])
    s_activate = activates[su] & (s_rank == act_rank[su])
    after_signup = signs[su] & (s_rank >= sig_rank[su])
    buy_p = np.where(s_rank == sig_rank[su], 0.30, 0.16)
    s_purchase = payer[su] & after_signup & (rng.random(ns) < buy_p)
    s_cart_only = (~s_purchase) & (rng.random(ns) < 0.09)
    s_invite = activates[su] & (s_rank >= act_rank[su]) & (rng.random(ns) < INVITE_P)

    # page views: arrival bounce per source profile; later sessions bounce 30 %
    bounce = np.where(s_rank == 0, pr("bounce", s_src), 0.30)
    busy = s_signup | s_activate | s_purchase | s_cart_only | s_invite
    n_pv = np.where((rng.random(ns) < bounce) & ~busy, 1, np.minimum(6, 2 + rng.poisson(1.6, ns)))
    n_pv = np.where(is_ref[su] & (s_rank == 0), np.minimum(n_pv, 2), n_pv)
    web = rng.random(n) < np.array([s.web_share for s in SOURCES])[src]
    platform = np.where(web, 2, np.where(rng.random(n) < 0.42, 0, 1))  # 0 ios, 1 android, 2 web
    s_app_open = (platform[su] != 2) & (s_rank > 0) & (rng.random(ns) < 0.9)

    # utm: arrival session carries the first touch; some later sessions of paid/referral users come back
    # through a paid campaign (direct and organic users never get a later utm, so first touch stays theirs)
    paid_idx = np.array([i for i, s in enumerate(SOURCES) if s.cac > 0 or s.channel == "baidu"])
    has_utm_user = np.array([s.channel not in ("", "organic") for s in SOURCES])[src]
    later_utm = (s_rank > 0) & has_utm_user[su] & (rng.random(ns) < 0.14)
    s_utm = np.where(s_rank == 0, s_src, np.where(later_utm, rng.choice(paid_idx, ns), -1))

    # purchases: amount per order; a few refunds land in a later session of the same user
    amount = np.round(pr("aov", s_src) * rng.lognormal(0.0, 0.45, ns), 2)
    pur_sess = np.nonzero(s_purchase)[0]
    refund = rng.random(len(pur_sess)) < 0.04
    ref_from = pur_sess[refund]
    key = su.astype(np.int64) * (N_DAYS * DAY * 4) + s_start
    target = np.searchsorted(key, key[ref_from] + DAY)
    ok = (target < ns)
    ok[ok] &= su[target[ok]] == su[ref_from[ok]]
    s_refund = np.zeros(ns, bool)
    s_refund_amt = np.zeros(ns)
    s_refund[target[ok]] = True
    s_refund_amt[target[ok]] = -amount[ref_from[ok]]

    # ---- expand sessions into events. kind codes define the in-session order.
    KINDS = ["app_open", "page_view", "signup_pv", "signup", "activate", "cart_pv", "add_to_cart",
             "checkout_pv", "purchase", "refund_pv", "refund", "invite"]
    counts = {
        "app_open": s_app_open.astype(int), "page_view": n_pv, "signup_pv": s_signup.astype(int),
        "signup": s_signup.astype(int), "activate": s_activate.astype(int),
        "cart_pv": (s_purchase | s_cart_only).astype(int), "add_to_cart": (s_purchase | s_cart_only).astype(int),
        "checkout_pv": s_purchase.astype(int), "purchase": s_purchase.astype(int),
        "refund_pv": s_refund.astype(int), "refund": s_refund.astype(int), "invite": s_invite.astype(int)}
    ev_sess, ev_kind, ev_sub = [], [], []
    for ki, kname in enumerate(KINDS):
        c = counts[kname]
        idx = np.repeat(np.arange(ns), c)
        ev_sess.append(idx)
        ev_kind.append(np.full(len(idx), ki))
        ev_sub.append(np.arange(len(idx)) - np.repeat(np.cumsum(c) - c, c))
    ev_sess = np.concatenate(ev_sess)
    ev_kind = np.concatenate(ev_kind)
    ev_sub = np.concatenate(ev_sub)
    o = np.lexsort((ev_sub, ev_kind, ev_sess))
    ev_sess, ev_kind, ev_sub = ev_sess[o], ev_kind[o], ev_sub[o]
    ne = len(ev_sess)
    gaps = np.clip(rng.exponential(40.0, ne), 3, 80).astype(np.int64)
    first_ev = np.r_[True, ev_sess[1:] != ev_sess[:-1]]
    gaps[first_ev] = 0
    csum = np.cumsum(gaps)
    start_pos = np.nonzero(first_ev)[0]
    offs = csum - csum[start_pos][np.cumsum(first_ev) - 1]
    ev_time = s_start[ev_sess] + offs

    # page_url
    prod = np.char.add("/product/", rng.integers(100, 400, ne).astype(str))
    blog = np.char.add("/blog/", np.array(BLOG)[rng.integers(0, len(BLOG), ne)])
    browse = rng.random(ne)
    page = np.where(browse < 0.50, prod, np.where(browse < 0.68, "/", np.where(browse < 0.82, "/pricing", blog)))
    is_pv = ev_kind == 1
    landing_first = is_pv & (ev_sub == 0) & (s_rank[ev_sess] == 0)
    # landing page: one of the source's landing pages, picked at random per user
    lp_pick = rng.random(ne)
    land_opts = [SOURCES[i].landing for i in range(len(SOURCES))]
    land_kind = np.empty(ne, dtype=object)
    src_e = s_src[ev_sess]
    for i, opts in enumerate(land_opts):
        m = landing_first & (src_e == i)
        land_kind[m] = np.array(opts, dtype=object)[(lp_pick[m] * len(opts)).astype(int)]
    lk = land_kind[landing_first].astype(str)
    page_first = np.where(lk == "/product/", prod[landing_first], np.where(lk == "/blog/", blog[landing_first], lk))
    page = page.astype(object)
    page[landing_first] = page_first
    page[ev_kind == 5] = prod[ev_kind == 5]  # the product put in the cart
    for kc, pth in {2: "/signup", 7: "/checkout", 9: "/account/orders"}.items():
        page[ev_kind == kc] = pth
    non_pv = ~np.isin(ev_kind, [1, 2, 5, 7, 9])
    page[non_pv] = ""

    names = np.array(["app_open", "page_view", "page_view", "signup", "activate", "page_view", "add_to_cart",
                      "page_view", "purchase", "page_view", "refund", "invite"], dtype=object)
    ev_amount = np.full(ne, np.nan)
    m = ev_kind == 8
    ev_amount[m] = amount[ev_sess[m]]
    m = ev_kind == 10
    ev_amount[m] = s_refund_amt[ev_sess[m]]
    ev_user = su[ev_sess]
    ev_inviter = np.full(ne, -1, np.int64)
    m = ev_kind == 3
    ev_inviter[m] = inviter[ev_user[m]]

    inv = ev_kind == 11
    events = dict(user=ev_user, name=names[ev_kind], time=ev_time, utm=s_utm[ev_sess], page=page,
                  sess=ev_sess, amount=ev_amount, inviter=ev_inviter, platform=platform[ev_user],
                  seq=np.arange(ne))
    return events, ev_user[inv], ev_time[inv], ns


def _survey(rng, scale):
    """Ratings for ours vs the rival; trust is our drag (higher cost) in every segment."""
    value_dims = ["usefulness", "quality", "price_value"]
    cost_dims = ["money", "time", "learning", "trust", "emotion", "safety"]
    # per segment: (our trust cost, rival trust cost, our value edge). Other costs favour us by 0.5 in total,
    # so our score minus the rival's = edge - (trust gap - 0.5) / 6: about -0.3 in the first four segments
    # (trust gap ~3.6) and +0.3 in the last four (trust gap ~2.4).
    segs = {"douyin": (7.6, 3.9, 0.25), "weibo": (7.5, 3.9, 0.25), "baidu": (7.4, 3.8, 0.25),
            "wechat": (7.3, 3.7, 0.25), "xiaohongshu": (6.6, 4.2, 0.60), "bilibili": (6.7, 4.3, 0.60),
            "organic": (6.5, 4.1, 0.60), "referral": (6.5, 4.1, 0.60)}
    ours_val = np.array([7.6, 7.5, 7.0])
    ours_cost = {"money": 4.0, "time": 3.5, "learning": 3.3, "emotion": 3.0, "safety": 3.7}
    rival_cost = {"money": 4.1, "time": 3.7, "learning": 3.4, "emotion": 3.2, "safety": 3.6}
    n_resp = max(4, int(round(40 * scale)))
    rows = []
    rid = 0
    for seg, (t_ours, t_rival, edge) in segs.items():
        for product in ["ours", RIVAL]:
            vmean = ours_val if product == "ours" else ours_val - edge
            cmean = dict(ours_cost if product == "ours" else rival_cost)
            cmean["trust"] = t_ours if product == "ours" else t_rival
            # respondent bias + item noise, centred per dimension so each group's mean sits on its design
            # value (the story must not hinge on sampling luck); then rounded to whole points on 0-10
            noise_v = rng.normal(0, 0.5, (n_resp, 1)) + rng.normal(0, 1.1, (n_resp, 3))
            noise_c = rng.normal(0, 0.5, (n_resp, 1)) + rng.normal(0, 1.1, (n_resp, 6))
            noise_v -= noise_v.mean(axis=0)
            noise_c -= noise_c.mean(axis=0)
            vs = np.clip(np.round(vmean + noise_v), 0, 10)
            cs = np.clip(np.round(np.array([cmean[d] for d in cost_dims]) + noise_c), 0, 10)
            for v, c in zip(vs, cs):
                rid += 1
                for d, sc in zip(value_dims, v):
                    rows.append((seg, product, d, "value", int(sc), f"r{rid:05d}"))
                for d, sc in zip(cost_dims, c):
                    rows.append((seg, product, d, "cost", int(sc), f"r{rid:05d}"))
    return pd.DataFrame(rows, columns=["segment", "product", "dimension", "kind", "score", "respondent_id"])


def _write_csv_gz(df: pd.DataFrame, path: Path) -> None:
    raw = df.to_csv(index=False, lineterminator="\n").encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    path.write_bytes(buf.getvalue())


def generate(seed: int = DEFAULT_SEED, out_dir="sample_data", scale: float = 1.0) -> dict:
    """Write events.csv.gz, spend.csv and survey.csv into `out_dir`; return row counts per file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    spend_df, src0, day0 = _spend_and_arrivals(rng, scale)
    t0 = _hour_times(rng, day0)

    # generation 0, then referral generations from converted invites
    chunks, user_src, user_t0, user_inviter = [], [src0], [t0], [np.full(len(src0), -1, np.int64)]
    offset, sess_offset = 0, 0
    src, tt, invr = src0, t0, user_inviter[0]
    while len(src):
        ev, inv_user, inv_time, n_sess = _simulate(rng, src, tt, invr)
        ev["user"] = ev["user"] + offset
        ev["sess"] = ev["sess"] + sess_offset
        chunks.append(ev)
        conv = rng.random(len(inv_user)) < INVITE_CONVERT
        arrive = inv_time[conv] + np.maximum(600, rng.exponential(20 * 3600, conv.sum())).astype(np.int64)
        keep = arrive < N_DAYS * DAY
        new_inviter = inv_user[conv][keep] + offset
        offset += len(src)
        sess_offset += n_sess
        src = np.full(keep.sum(), REFERRAL)
        tt = arrive[keep]
        invr = new_inviter
        user_src.append(src)
        user_t0.append(tt)
        user_inviter.append(invr)

    ev = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    all_t0 = np.concatenate(user_t0)
    n_users = len(all_t0)

    # stable, readable ids: users numbered by first arrival, sessions by start time
    uorder = np.lexsort((np.arange(n_users), all_t0))
    uid_num = np.empty(n_users, np.int64)
    uid_num[uorder] = np.arange(1, n_users + 1)
    uid = np.char.add("u", np.char.zfill(uid_num.astype(str), 6))
    sess_start = np.full(ev["sess"].max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(sess_start, ev["sess"], ev["time"])
    sess_user = np.zeros_like(sess_start)
    sess_user[ev["sess"]] = uid_num[ev["user"]]
    sorder = np.lexsort((sess_user, sess_start))
    sid_num = np.empty_like(sorder)
    sid_num[sorder] = np.arange(1, len(sorder) + 1)

    # the export stops at 2026-10-31 24:00 local: late sessions lose their events after midnight
    o = np.lexsort((ev["seq"], ev["sess"], uid_num[ev["user"]], ev["time"]))
    o = o[ev["time"][o] < N_DAYS * DAY]
    e = {k: v[o] for k, v in ev.items()}
    ts = np.datetime_as_string(START + e["time"].astype("timedelta64[s]"), unit="s")
    utm_src = np.array([s.channel for s in SOURCES] + [""], dtype=object)[e["utm"]]
    utm_cmp = np.array([s.campaign for s in SOURCES] + [""], dtype=object)[e["utm"]]
    amt = np.full(len(o), "", dtype=object)
    has_amt = ~np.isnan(e["amount"])
    amt[has_amt] = np.char.mod("%.2f", e["amount"][has_amt])
    inviter = np.full(len(o), "", dtype=object)
    has_inv = e["inviter"] >= 0
    inviter[has_inv] = uid[e["inviter"][has_inv]]
    events_df = pd.DataFrame({
        "distinct_id": uid[e["user"]], "event": e["name"], "timestamp": np.char.add(ts, TZ_SUFFIX),
        "utm_source": utm_src, "utm_campaign": utm_cmp, "page_url": e["page"],
        "session_id": np.char.add("s", np.char.zfill(sid_num[e["sess"]].astype(str), 7)),
        "amount": amt, "inviter_id": inviter,
        "platform": np.array(["ios", "android", "web"])[e["platform"]]})
    _write_csv_gz(events_df, out / "events.csv.gz")

    spend_df.to_csv(out / "spend.csv", index=False, lineterminator="\n", float_format="%.2f")
    survey = _survey(rng, scale)
    survey.to_csv(out / "survey.csv", index=False, lineterminator="\n")
    return {"events": len(events_df), "users": n_users, "spend": len(spend_df), "survey": len(survey)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies users and spend (e.g. 0.02 for tests)")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    counts = generate(args.seed, args.out, args.scale)
    print(f"wrote {counts} to {args.out} in {time.perf_counter() - t:.1f}s")


if __name__ == "__main__":
    main()
