"""Perceived value − cost: weights, missing dimensions, behaviour proxies and a rival, worked by hand."""
from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import store
from metrics.filters import Filters
from metrics.value_cost import Dimension, ValueCostModel, default_model, dimension_scores, score, value_cost_page
from store.errors import UserInputError
from tests.conftest import generated_store

NaN = float("nan")

MODEL = ValueCostModel((
    Dimension("usefulness", "value", weight=2.0, source="survey"),
    Dimension("activation", "value", weight=1.0, source="behaviour", metric="activation_rate"),
    Dimension("trust", "cost", weight=1.0, source="survey"),
    Dimension("money", "cost", weight=3.0, source="survey"),
    Dimension("time", "cost", weight=1.0, source="behaviour", metric="hours_to_activate"),
), time_ceiling_hours=48.0)

# survey means: wechat ours usefulness (8+6)/2 = 7, trust 7, money (2+4)/2 = 3; rival Acme 6, 4, 3.
# douyin ours usefulness 5, money 6, no trust rating; no rival ratings.
SURVEY = pd.DataFrame([
    ("WeChat", "ours", "usefulness", "value", 8, "r1"), ("WeChat", "ours", "usefulness", "value", 6, "r2"),
    ("WeChat", "ours", "trust", "cost", 7, "r1"),
    ("WeChat", "ours", "money", "cost", 2, "r1"), ("WeChat", "ours", "money", "cost", 4, "r2"),
    ("WeChat", "Acme", "usefulness", "value", 6, "r3"), ("WeChat", "Acme", "trust", "cost", 4, "r3"),
    ("WeChat", "Acme", "money", "cost", 3, "r3"),
    ("douyin", "ours", "usefulness", "value", 5, "r4"), ("douyin", "ours", "money", "cost", 6, "r4"),
], columns=["segment", "product", "dimension", "kind", "score", "respondent_id"])

# wechat: w1 activates after 12 h, w2 never -> activation 1/2 -> 5.0; median hours 12 -> time 10*12/48 = 2.5
# douyin: d1 activates after 48 h -> activation 1 -> 10; time 10 * min(48/48, 1) = 10
JOURNEYS = {
    "w1": [("page_view", "2024-01-01 00:00", {"channel": "wechat"}), ("activate", "2024-01-01 12:00")],
    "w2": [("page_view", "2024-01-01 00:00", {"channel": "wechat"})],
    "d1": [("page_view", "2024-01-01 00:00", {"channel": "douyin"}), ("activate", "2024-01-03 00:00")],
}


@pytest.fixture
def world(con, journeys):
    journeys(JOURNEYS)
    assert store.load_survey(con, SURVEY).rejected == 0
    return con


def test_scores_with_weights_and_rival(world):
    got = score(world, MODEL, rival="Acme")
    expected = pd.DataFrame([
        # douyin: value (2*5 + 1*10)/3 = 20/3; cost without trust (missing, weights renormalised):
        # (3*6 + 1*10)/4 = 7 -> score -1/3; no rival ratings; largest weighted cost money 3/4*6 = 4.5
        dict(segment="douyin", value=20 / 3, cost=7.0, score=20 / 3 - 7.0, rival_value=NaN, rival_cost=NaN,
             rival_score=NaN, verdict="does not adopt, no ratings of acme",
             diagnosis="money cost 6.0 is the largest weighted cost", missing="trust", shared_score=NaN),
        # wechat: value (2*7 + 1*5)/3 = 19/3; cost (1*7 + 3*3 + 1*2.5)/5 = 3.7 -> 2.6333.
        # Rival on the shared survey dimensions (usefulness, trust, money): rival 6 - (4 + 3*3)/4 = 2.75,
        # ours 7 - (7 + 3*3)/4 = 3.0 -> beats. Gaps against us: trust 1/4*(7-4) = 0.75 is the largest.
        dict(segment="wechat", value=19 / 3, cost=3.7, score=19 / 3 - 3.7, rival_value=6.0, rival_cost=3.25,
             rival_score=2.75, verdict="adopts, beats acme", diagnosis="trust cost 7.0 vs rival 4.0", missing="",
             shared_score=3.0),
    ])
    assert_frame_equal(got, expected)


def test_without_rival_diagnosis_is_the_largest_weighted_cost(world):
    got = score(world, MODEL).set_index("segment")
    # wechat weighted costs: trust 1/5*7 = 1.4, money 3/5*3 = 1.8, time 1/5*2.5 = 0.5 -> money, not trust
    assert got.loc["wechat", "diagnosis"] == "money cost 3.0 is the largest weighted cost"
    assert got.loc["wechat", "verdict"] == "adopts"
    assert got["rival_score"].isna().all()


def test_rival_that_wins(world):
    # raise our trust cost: ours on shared dims 7 - (10 + 9)/4 = 2.25 < rival 2.75
    store.load_survey(world, pd.DataFrame([("WeChat", "ours", "trust", "cost", 10, "r9"),
                                           ("WeChat", "ours", "trust", "cost", 10, "r10")],
                                          columns=["segment", "product", "dimension", "kind", "score", "respondent_id"]))
    got = score(world, MODEL, rival="acme").set_index("segment")
    # trust mean (7 + 10 + 10)/3 = 9
    assert got.loc["wechat", "verdict"] == "adopts, loses to acme"
    assert got.loc["wechat", "diagnosis"] == "trust cost 9.0 vs rival 4.0"


def test_dimension_scores_long_form(world):
    got = dimension_scores(world, MODEL, rival="Acme")
    wechat = got[got["segment"] == "wechat"].reset_index(drop=True)
    expected = pd.DataFrame([
        ("wechat", "ours", "money", "cost", 3 / 5, 3.0, 1.8, "survey"),
        ("wechat", "ours", "time", "cost", 1 / 5, 2.5, 0.5, "behaviour"),
        ("wechat", "ours", "trust", "cost", 1 / 5, 7.0, 1.4, "survey"),
        ("wechat", "ours", "activation", "value", 1 / 3, 5.0, 5 / 3, "behaviour"),
        ("wechat", "ours", "usefulness", "value", 2 / 3, 7.0, 14 / 3, "survey"),
        ("wechat", "acme", "money", "cost", 3 / 4, 3.0, 2.25, "survey"),
        ("wechat", "acme", "trust", "cost", 1 / 4, 4.0, 1.0, "survey"),
        ("wechat", "acme", "usefulness", "value", 1.0, 6.0, 6.0, "survey"),
    ], columns=["segment", "product", "dimension", "kind", "weight", "score", "weighted", "source"])
    assert_frame_equal(wechat, expected)
    # a dimension with no data is shown with weight 0 and no score, never as 0 points
    trust = got[(got["segment"] == "douyin") & (got["product"] == "ours") & (got["dimension"] == "trust")].iloc[0]
    assert trust["weight"] == 0.0 and math.isnan(trust["score"])


def test_behaviour_proxies_for_learning_trust_and_money(con, journeys):
    # s1 signs up, activates, pays 100; s2 signs up and activates; s3 signs up; s4 only views.
    # learning drop-off = 1 - 2/3 (activated among signed up) -> 3.333; trust = mean(sign-up drop-off
    # 1 - 3/4, payment drop-off 1 - 1/2) = 0.375 -> 3.75; money: ARPPU 100 / reference 400 -> 2.5
    journeys({
        "s1": [("signup", "2024-01-01 00:00", {"channel": "x"}), ("activate", "2024-01-01 01:00"),
               ("purchase", "2024-01-01 02:00", {"revenue": 100})],
        "s2": [("signup", "2024-01-01 00:00", {"channel": "x"}), ("activate", "2024-01-01 01:00")],
        "s3": [("signup", "2024-01-01 00:00", {"channel": "x"})],
        "s4": [("page_view", "2024-01-01 00:00", {"channel": "x"})],
    })
    model = ValueCostModel((
        Dimension("paying conversion", "value", source="behaviour", metric="paying_rate"),
        Dimension("learning", "cost", source="behaviour", metric="learning_dropoff"),
        Dimension("trust", "cost", source="behaviour", metric="trust_dropoff"),
        Dimension("money", "cost", source="behaviour", metric="arppu"),
    ), reference_price=400.0)
    got = dimension_scores(con, model)
    assert got[["dimension", "score"]].values.tolist() == [
        ["learning", pytest.approx(10 / 3)], ["money", 2.5], ["trust", 3.75], ["paying conversion", 2.5]]
    s = score(con, model).iloc[0]
    # value 2.5 (paying 1/4); cost (10/3 + 2.5 + 3.75)/3
    assert s["score"] == pytest.approx(2.5 - (10 / 3 + 2.5 + 3.75) / 3)
    assert s["diagnosis"] == "trust cost 3.8 is the largest weighted cost"


def test_default_model_takes_one_source_per_dimension(world):
    model = default_model(world)
    sources = {d.name: (d.kind, d.source, d.metric) for d in model.dimensions}
    assert sources == {
        "usefulness": ("value", "survey", None),
        "activation": ("value", "behaviour", "activation_rate"),
        "week-1 retention": ("value", "behaviour", "retention_w1"),
        "paying conversion": ("value", "behaviour", "paying_rate"),
        "money": ("cost", "survey", None),            # rated in the survey
        "trust": ("cost", "survey", None),            # rated in the survey
        "time": ("cost", "behaviour", "hours_to_activate"),
        "learning": ("cost", "behaviour", "learning_dropoff"),
        "emotion": ("cost", "survey", None),          # no proxy: reported missing without ratings
        "safety": ("cost", "survey", None),
    }
    got = score(world, model).set_index("segment")
    # no sign-ups -> no learning proxy; the data ends 3 Jan, so no user has a whole week 1 -> censored
    assert got.loc["wechat", "missing"] == "emotion, learning, safety, week-1 retention"


def test_behaviour_only_score_without_survey(con, journeys):
    # the no-survey case used by the campaign table (see test_economics): wechat users u1 (activated after
    # 24 h, active in week 1, revenue 150), u2 (net 0 after a refund, paying), u5 (revenue 50).
    journeys({
        "u1": [("page_view", "2024-01-01 10:00", {"channel": "wechat"}), ("activate", "2024-01-02 10:00"),
               ("purchase", "2024-01-03 09:00", {"revenue": 100}), ("page_view", "2024-01-09 10:00"),
               ("purchase", "2024-02-05 10:00", {"revenue": 50})],
        "u2": [("page_view", "2024-01-01 12:00", {"channel": "wechat"}),
               ("purchase", "2024-01-02 12:00", {"revenue": 80}), ("refund", "2024-01-05 12:00", {"revenue": -80})],
        "u5": [("page_view", "2024-01-02 08:00", {"channel": "wechat"}),
               ("purchase", "2024-01-05 09:00", {"revenue": 50})],
    })
    got = score(con, default_model(con)).iloc[0]
    # value: activation 1/3, week-1 retention 1/3, paying 3/3 -> (10/3 + 10/3 + 10)/3 = 50/9
    # cost: money ARPPU 200/3 / 500 -> 4/3; time 24 h / 168 h -> 10/7; trust mean(1 - 0, 1 - 1/1) -> 5;
    # learning: no sign-ups -> missing; emotion, safety: no survey -> missing. (4/3 + 10/7 + 5)/3 = 163/63
    assert got["value"] == pytest.approx(50 / 9) and got["cost"] == pytest.approx(163 / 63)
    assert got["score"] == pytest.approx(187 / 63)
    assert got["missing"] == "emotion, learning, safety"


@pytest.mark.parametrize("build, message", [
    (lambda: Dimension("x", "benefit"), "kind"),
    (lambda: Dimension("x", "value", source="gut"), "source"),
    (lambda: Dimension("x", "value", source="behaviour"), "metric"),
    (lambda: Dimension("x", "value", weight=0), "weight"),
    (lambda: ValueCostModel((Dimension("x", "value"), Dimension("X", "cost"))), "once"),
    (lambda: ValueCostModel(()), "at least one"),
])
def test_bad_models_are_user_errors(build, message):
    with pytest.raises(UserInputError, match=message):
        build()


def test_bad_segment_by(world):
    with pytest.raises(UserInputError, match="Segment by"):
        score(world, MODEL, segment_by="country")


def test_campaigns_inherit_their_channels_survey(con, journeys):
    # w1, w2 now arrive through wechat / spring: the survey rates channels, so 'spring' takes wechat's
    # ratings and its own behaviour (the same numbers as the wechat row above); d1 has no campaign and
    # forms the 'douyin' segment. The survey's 'wechat' segment is used by spring, not listed alone.
    spec = {u: [(name, when, {**extra, "campaign": "spring"}) if extra.get("channel") == "wechat" else (name, when, extra)
                for name, when, *rest in events for extra in [rest[0] if rest else {}]]
            for u, events in JOURNEYS.items()}
    journeys(spec)
    store.load_survey(con, SURVEY)
    got = score(con, MODEL, segment_by="campaign", rival="acme")
    assert got["segment"].tolist() == ["douyin", "spring"]
    spring = got.iloc[1]
    assert (spring["value"], spring["cost"], spring["shared_score"], spring["rival_score"]) == (
        pytest.approx(19 / 3), pytest.approx(3.7), pytest.approx(3.0), pytest.approx(2.75))
    assert spring["verdict"] == "adopts, beats acme" and spring["diagnosis"] == "trust cost 7.0 vs rival 4.0"


# ---------------------------------------------------------------------------------------------
# The per-user rollups in place of the pass over the acquired users' events
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    con = generated_store(tmp_path_factory, "value_cost_sample", seed=3, survey=True)
    yield con
    con.close()


@pytest.mark.parametrize("segment_by, filters", [
    ("channel", None),
    ("campaign", Filters(start=date(2026, 7, 20), end=date(2026, 9, 20), timezone="Asia/Shanghai")),
    ("channel", Filters(channels=("douyin", "baidu", "referral"))),
])
def test_rollups_give_the_behaviour_of_the_event_pass(generated, monkeypatch, segment_by, filters):
    import metrics.economics as economics
    from metrics.value_cost import behaviour_sql

    sql, values = behaviour_sql(segment_by, filters)
    assert "user_days" in sql
    got = generated.execute(sql, values).df()
    scored = score(generated, default_model(), segment_by, rival=None, filters=filters)
    assert len(got) >= 3 and got["users"].sum() > 50
    assert (got["activation_rate"] > 0).any() and (got["retention_w1"] > 0).any() and (got["paying_rate"] > 0).any()
    assert got["hours_to_activate"].notna().any() and got["learning_dropoff"].notna().any()
    monkeypatch.setattr(economics, "rollups_ok", lambda f: False)
    sql, values = behaviour_sql(segment_by, filters)
    assert "user_days" not in sql
    assert_frame_equal(got, generated.execute(sql, values).df())
    assert_frame_equal(scored, score(generated, default_model(), segment_by, rival=None, filters=filters))


@pytest.mark.parametrize("segment_by, rival, filters", [
    ("channel", None, None), ("channel", "rival", Filters(channels=("douyin", "baidu", "referral"))),
    ("campaign", "rival", Filters(start=date(2026, 7, 20), end=date(2026, 9, 20), timezone="Asia/Shanghai")),
    ("survey", "rival", None),
])
def test_the_page_gets_scores_and_dimensions_from_one_computation(generated, segment_by, rival, filters):
    products = set(generated.execute("SELECT DISTINCT product FROM survey").df()["product"])
    rival = rival if rival in products else (sorted(products - {"ours"}) or [None])[0]
    model = default_model(generated)
    both = value_cost_page(generated, model, segment_by, rival, filters)
    assert_frame_equal(both["scores"], score(generated, model, segment_by, rival, filters))
    assert_frame_equal(both["dimensions"], dimension_scores(generated, model, segment_by, rival, filters))
    assert len(both["scores"]) >= 2 and both["scores"]["score"].notna().any()
    if rival:
        assert both["scores"]["rival_score"].notna().any()

def test_behaviour_at_the_edges_of_the_windows(con, journeys, monkeypatch):
    """Activation 1 s inside and exactly at 7 days; week-1 activity exactly at 7 days and 1 s short of 14."""
    import metrics.economics as economics
    from metrics.value_cost import behaviour_sql

    journeys({
        "a": [("signup", "2024-01-01 00:00:00", {"channel": "ads"}), ("activate", "2024-01-07 23:59:59"),
              ("page_view", "2024-01-14 23:59:59")],
        "b": [("signup", "2024-01-01 00:00:00", {"channel": "ads"}), ("activate", "2024-01-08 00:00:00")],
        "c": [("page_view", "2024-01-01 00:00:00", {"channel": "ads"}), ("page_view", "2024-01-15 00:00:00")],
    })
    sql, values = behaviour_sql("channel", None)
    got = con.execute(sql, values).df().iloc[0]
    # activated: a only (b is exactly 7 days on); week 1 (days 7-13): a (its 01-14 23:59:59 is day 13) and b
    # (its activation is day 7), not c (day 14); hours to activate: a 167.99…, b 168 -> median 167.9986…
    assert (got["users"], got["activation_rate"], got["retention_w1"]) == (3, 1 / 3, 2 / 3)
    assert got["hours_to_activate"] == pytest.approx((7 * 24 - 1 / 3600 + 7 * 24) / 2)
    monkeypatch.setattr(economics, "rollups_ok", lambda f: False)
    sql, values = behaviour_sql("channel", None)
    assert "user_days" not in sql
    assert con.execute(sql, values).df().iloc[0].equals(got)
