"""The bundled sample data tells its story through the economics metrics (sample_data/README.md).

Loaded once per module. Each public function is also timed on the sample (printed with ``-s``; no timed
assertions: CI machines vary).
"""
from __future__ import annotations

import time

import pandas as pd
import pytest

import store
from metrics.economics import (EconomicsParams, campaign_economics, campaign_vs_retention, ltv_curves,
                               spend_coverage, spend_coverage_summary)
from metrics.referral import ReferralParams, referral, referral_summary
from metrics.saturation import SaturationParams, channel_saturation, saturation_points
from metrics.stats import SMALL_SAMPLE
from metrics.value_cost import default_model, dimension_scores, score

TZ = "Asia/Shanghai"
PAID = ("baidu", "bilibili", "douyin", "wechat", "weibo", "xiaohongshu")
TIMINGS: dict[str, float] = {}

pytestmark = pytest.mark.skipif(not (store.SAMPLE_DIR / "events.csv.gz").exists(), reason="no sample data")


@pytest.fixture(scope="module")
def sample():
    con = store.connect(":memory:")
    store.load_sample_data(con)
    yield con
    con.close()


def timed(name, fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    TIMINGS[name] = time.perf_counter() - started
    return result


def test_cheap_campaign_is_cheapest_and_churniest(sample):
    econ = timed("campaign_economics", campaign_economics, sample, EconomicsParams(timezone=TZ))
    paid = econ[econ["cac"].notna() & (econ["new_users"] > 0)]
    assert paid.loc[paid["cac"].idxmin(), "campaign"] == "douyin_flash_sale"
    big = econ[econ["new_users"] >= SMALL_SAMPLE]
    assert big.loc[big["retention_w4"].idxmin(), "campaign"] == "douyin_flash_sale"


def test_expensive_loyal_campaign_has_the_best_ltv(sample):
    table = timed("campaign_vs_retention", campaign_vs_retention, sample, EconomicsParams(timezone=TZ))
    assert table.loc[table["ltv_30"].idxmax(), "campaign"] == "xhs_kol_review"
    kol = table[table["campaign"] == "xhs_kol_review"].iloc[0]
    # dear but loyal: one of the highest CACs, the best week-4 retention
    assert kol["cac"] > table["cac"].median() and kol["retention_w4"] == table["retention_w4"].max()
    assert not table.loc[table["new_users"] >= SMALL_SAMPLE, "small_sample"].any()


def test_only_baidu_is_saturated(sample):
    sat = timed("channel_saturation", channel_saturation, sample, SaturationParams(timezone=TZ))
    assert sorted(sat["channel"]) == sorted(PAID)
    flagged = sat.loc[sat["saturated"].fillna(False).astype(bool), "channel"].tolist()
    assert flagged == ["baidu"]
    baidu = sat.set_index("channel").loc["baidu"]
    assert baidu["b"] < 0.6 and baidu["weeks"] >= 6


def test_value_cost_diagnosis_names_trust(sample):
    model = timed("default_model", default_model, sample)
    rated = timed("score (rival)", score, sample, model, rival="BrightCart")
    surveyed = rated[rated["rival_score"].notna()]
    assert len(surveyed) == 8
    assert surveyed["diagnosis"].str.startswith("trust cost").all()
    # the rival wins where our trust cost is highest (sample_data/README.md)
    verdicts = surveyed.set_index("segment")["verdict"].str.split(", ").str[1]
    assert verdicts.to_dict() == {
        **{s: "loses to brightcart" for s in ("baidu", "douyin", "wechat", "weibo")},
        **{s: "beats brightcart" for s in ("bilibili", "organic", "referral", "xiaohongshu")}}
    alone = timed("score", score, sample, model)
    assert alone.loc[alone["segment"].isin(surveyed["segment"]), "diagnosis"].str.startswith("trust cost").all()


def test_spend_coverage_finds_the_test_flight(sample):
    cov = timed("spend_coverage", spend_coverage, sample)
    assert cov.loc[~cov["matched"], ["channel", "campaign"]].values.tolist() == [["weibo", "weibo_test_banner"]]
    summary = timed("spend_coverage_summary", spend_coverage_summary, sample)
    assert summary["unmatched_keys"].iloc[0] == 1 and 0.99 < summary["matched_share"].iloc[0] < 1


def test_time_remaining_functions(sample):
    p = EconomicsParams(timezone=TZ)
    curves = timed("ltv_curves", ltv_curves, sample, p)
    assert curves["day"].max() == 90
    timed("campaign_economics (channel)", campaign_economics, sample, EconomicsParams(level="channel", timezone=TZ))
    timed("saturation_points", saturation_points, sample, SaturationParams(timezone=TZ))
    weekly = timed("referral", referral, sample, ReferralParams(timezone=TZ))
    summary = timed("referral_summary", referral_summary, sample, ReferralParams(timezone=TZ))
    assert 0 < summary["k_factor"].iloc[0] < 1 and len(weekly) > 0
    timed("dimension_scores", dimension_scores, sample, default_model(sample), rival="BrightCart")
    report = pd.Series(TIMINGS).sort_values(ascending=False).round(3)
    print("\nsample-data timings (s):\n" + report.to_string())
