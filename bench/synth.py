"""A seeded synthetic event log of any size, shaped like the sample data's export.

Same headers as ``sample_data/events.csv.gz`` (string user ids such as ``u0001234``, ISO-8601 times
with a +08:00 offset, utm columns on the first session, page paths, session ids, amounts on
purchases). Users move through page_view → signup → activate → purchase with decreasing
probability and keep coming back with app opens and page views over 120 days, so funnels,
retention and traffic all have real work to do.

Each user's events are strictly increasing in time (gaps of at least one second), so the engines
compared in the benchmark never have to break ties between a user's events: their definitions agree
on such logs, and a disagreement is a bug, not a convention.

Vectorised with numpy and Arrow compute, written in chunks of whole users, so memory stays flat at any size.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HEADERS = ["distinct_id", "event", "timestamp", "utm_source", "utm_campaign", "page_url", "session_id",
           "amount", "inviter_id", "platform"]
START = np.datetime64("2026-07-04T00:00:00", "s")
DAYS = 120
CHANNELS = np.array(["wechat", "douyin", "xiaohongshu", "baidu", "weibo", "bilibili", "organic", "referral", ""])
CHANNEL_P = np.array([0.14, 0.2, 0.1, 0.2, 0.06, 0.06, 0.1, 0.08, 0.06])
CAMPAIGNS = {
    "wechat": ["wechat_moments_spring", "wechat_official_account"], "douyin": ["douyin_flash_sale", "douyin_live_stream"],
    "xiaohongshu": ["xhs_kol_review", "xhs_notes_seeding"], "baidu": ["baidu_brand_search", "baidu_generic_search"],
    "weibo": ["weibo_hot_topic"], "bilibili": ["bilibili_anime_preroll", "bilibili_creator_collab"],
    "organic": [""], "referral": [""], "": [""],
}
PAGES = np.array(["/", "/pricing", "/product/1", "/product/2", "/product/3", "/blog/growth", "/signup", "/checkout"])
# Journey events: the first four are the funnel; afterwards a user returns with these.
RETURN_EVENTS = np.array(["page_view", "app_open", "add_to_cart", "purchase", "invite"])
RETURN_P = np.array([0.5, 0.3, 0.1, 0.06, 0.04])


def _take(values, idx) -> pa.Array:
    return pc.take(pa.array(values), pa.array(idx))


def generate(n_events: int, seed: int = 7, first_user: int = 0, first_session: int = 0) -> pa.Table:
    """Draw exactly ``n_events`` events as an Arrow table of text columns.

    ``first_user`` / ``first_session`` number the ids, so chunks drawn with successive offsets
    (see :func:`write_csv`) form one log.
    """
    rng = np.random.default_rng(seed)
    n_users = max(1, n_events // 25)
    # events per user: skewed (a few heavy users), scaled so the total is exactly n_events
    weights = rng.gamma(0.7, 1.0, n_users) + 0.05
    counts = np.maximum(1, np.floor(weights / weights.sum() * n_events)).astype(np.int64)
    short = n_events - counts.sum()
    if short > 0:
        np.add.at(counts, rng.integers(0, n_users, short), 1)
    while counts.sum() > n_events:
        big = np.flatnonzero(counts > 1)
        counts[big[:int(counts.sum() - n_events)]] -= 1
    starts = np.cumsum(counts) - counts
    user = np.repeat(np.arange(n_users), counts)
    pos = np.arange(n_events) - np.repeat(starts, counts)            # index within the user

    # time: gaps of seconds to minutes inside a visit, days between visits; >= 1 s, so strictly increasing
    new_visit = rng.random(n_events) < 0.25
    gaps = np.where(new_visit, rng.exponential(3 * 86400, n_events), rng.exponential(90, n_events))
    gaps = np.floor(gaps).astype(np.int64) + 1
    gaps[pos == 0] = 0
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[starts], counts)
    # fit every user's span into the 120 days: scale long spans down, keep times strictly increasing
    horizon = DAYS * 86400 - 3600
    span = offset[starts + counts - 1]
    factor = np.minimum(1.0, (horizon - counts) / np.maximum(span, 1))
    offset = np.floor(offset * np.repeat(factor, counts)).astype(np.int64) + pos
    span = offset[starts + counts - 1]
    first = (rng.random(n_users) * (horizon - span)).astype(np.int64)
    seconds = np.repeat(first, counts) + offset

    # event names: the funnel first (with drop-off), then returning behaviour
    reach = rng.choice(5, n_users, p=[0.35, 0.25, 0.15, 0.1, 0.15])
    names = np.array(["page_view", "signup", "activate", "purchase", "app_open", "add_to_cart", "invite"])
    ret_code = np.array([0, 4, 5, 3, 6])[rng.choice(len(RETURN_EVENTS), n_events, p=RETURN_P)]
    in_funnel = (pos < 4) & (pos < np.repeat(reach, counts))
    code = np.where(in_funnel, np.minimum(pos, 3), ret_code)
    code[pos == 0] = 0

    session_start = (pos == 0) | new_visit
    session_no = np.cumsum(session_start) + first_session
    first_visit = session_no == np.repeat(session_no[starts], counts)

    ch_idx = rng.choice(len(CHANNELS), n_users, p=CHANNEL_P)
    camp_pick = rng.integers(0, 2, n_users)
    campaigns = []
    camp_idx = np.zeros(n_users, dtype=np.int64)
    for i, c in enumerate(CHANNELS):      # 9 channels, not rows
        base = len(campaigns)
        campaigns += CAMPAIGNS[c]
        sel = ch_idx == i
        camp_idx[sel] = base + camp_pick[sel] % len(CAMPAIGNS[c])
    chan_ev = np.where(first_visit, np.repeat(ch_idx, counts), len(CHANNELS) - 1)   # last = ""
    camp_ev = np.where(first_visit, np.repeat(camp_idx, counts), len(campaigns))
    campaigns.append("")

    page_code = np.where(code == 0, rng.integers(0, len(PAGES), n_events), len(PAGES))
    amounts = np.round(rng.gamma(2.0, 60.0, n_events), 2)

    ts = pa.array(START.astype("int64") + seconds + 8 * 3600, type=pa.timestamp("s"))
    uid = pc.binary_join_element_wise("u", pc.utf8_lpad(pc.cast(pa.array(user + first_user), pa.string()), 7, "0"), "")
    sid = pc.binary_join_element_wise("s", pc.cast(pa.array(session_no), pa.string()), "")
    amount = pc.if_else(pa.array(code == 3), pc.cast(pa.array(amounts), pa.string()), "")
    return pa.table({
        "distinct_id": uid,
        "event": _take(names, code),
        "timestamp": pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S+08:00"),
        "utm_source": _take(CHANNELS, chan_ev),
        "utm_campaign": _take(campaigns, camp_ev),
        "page_url": _take(list(PAGES) + [""], page_code),
        "session_id": sid,
        "amount": amount,
        "inviter_id": pa.nulls(n_events, pa.string()),
        "platform": _take(["ios", "android", "web"], np.repeat(rng.integers(0, 3, n_users), counts)),
    })


CHUNK = 2_000_000


def write_csv(n_events: int, path: str | Path, seed: int = 7) -> None:
    """Write a log of exactly ``n_events`` rows to ``path`` in chunks of whole users (flat memory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done, users, sessions, chunk_no = 0, 0, 0, 0
    with pacsv.CSVWriter(str(path), generate(1, seed).schema) as writer:
        while done < n_events:
            n = min(CHUNK, n_events - done)
            table = generate(n, seed * 100_003 + chunk_no, first_user=users, first_session=sessions)
            writer.write_table(table)
            done += n
            users += max(1, n // 25)
            sessions += int(pc.max(pc.cast(pc.utf8_slice_codeunits(table["session_id"], 1), pa.int64())).as_py())
            chunk_no += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="bench/results/events.csv")
    args = parser.parse_args()
    t = time.perf_counter()
    write_csv(args.events, args.out, args.seed)
    print(f"{args.events:,} events → {args.out} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
