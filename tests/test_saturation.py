"""Diminishing returns: power-law fits on exact synthetic weeks, saturation flags and notes."""
from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import store
from metrics.filters import Filters
from metrics.saturation import SaturationParams, channel_saturation, saturation_points
from metrics.stats import power_fit
from store.errors import UserInputError

MONDAY = date(2024, 1, 1)
# weekly spend and new users, exactly on users = a * spend^b
CHANNELS = {
    "search": [(s, int(round(1.0 * s ** 0.5))) for s in (100, 400, 900, 1600, 2500, 3600)],  # a=1, b=0.5
    "social": [(s, s // 10) for s in (100, 200, 300, 400, 500, 600)],                          # a=0.1, b=1
    "few": [(100, 5), (200, 9), (300, 14)],                                                     # 3 weeks only
    "flat": [(100, 10), (100, 11), (100, 9), (100, 10), (100, 12), (100, 10)],                  # spend never varies
}


@pytest.fixture
def world(con, journeys):
    spec, spend = {}, []
    for channel, weeks in CHANNELS.items():
        for w, (amount, users) in enumerate(weeks):
            monday = MONDAY + timedelta(weeks=w)
            # spend is booked on the Sunday; users arrive on the Wednesday
            spend.append((str(monday + timedelta(days=6)), channel, "", float(amount)))
            for i in range(users):
                spec[f"{channel}-{w}-{i}"] = [("page_view", f"{monday + timedelta(days=2)} 10:00", {"channel": channel})]
    # the data runs from Monday 1 Jan to Sunday 11 Feb; a partial week before it starts is ignored
    spend.append(("2023-12-30", "search", "", 5000.0))
    spec["early"] = [("page_view", "2024-01-01 00:30")]
    spec["late"] = [("page_view", "2024-02-11 20:00")]
    journeys(spec)
    store.load_spend(con, pd.DataFrame(spend, columns=["date", "channel", "campaign", "spend"]))
    return con


def test_power_fit_recovers_known_parameters():
    x = np.array([10.0, 20.0, 50.0, 100.0, 400.0])
    a, b, r2 = power_fit(x, 3.0 * x ** 0.7)
    assert (a, b, r2) == (pytest.approx(3.0), pytest.approx(0.7), pytest.approx(1.0))
    a, b, r2 = power_fit(pd.Series([1, 2, 4, 8]), pd.Series([5, 5, 5, 5]))
    assert (a, b) == (pytest.approx(5.0), pytest.approx(0.0, abs=1e-12))


@pytest.mark.parametrize("x, y, message", [
    ([1.0], [1.0], "at least two"),
    ([1.0, 0.0], [1.0, 2.0], "positive"),
    ([3.0, 3.0], [1.0, 2.0], "vary"),
])
def test_power_fit_rejects_unusable_points(x, y, message):
    with pytest.raises(UserInputError, match=message):
        power_fit(x, y)


def test_points_are_complete_monday_weeks(world):
    got = saturation_points(world)
    few = got[got["channel"] == "few"].reset_index(drop=True)
    # weeks 4-6 have neither spend nor users for 'few': no point
    assert_frame_equal(few, pd.DataFrame({
        "channel": ["few"] * 3,
        "week_start": [MONDAY + timedelta(weeks=w) for w in range(3)],
        "spend": [100.0, 200.0, 300.0],
        "new_users": [5, 9, 14],
    }), check_dtype=False)
    # the 2023-12-25 week (spend on 30 Dec) is before the first event: not complete, not a point
    assert got["week_start"].min() == MONDAY
    assert sorted(got["channel"].unique()) == ["few", "flat", "search", "social"]


def test_channel_saturation_fits_and_flags(world):
    got = channel_saturation(world)
    search = got[got["channel"] == "search"].iloc[0]
    assert search["weeks"] == 6
    assert (search["a"], search["b"], search["r2"]) == (pytest.approx(1.0), pytest.approx(0.5), pytest.approx(1.0))
    # current spend = mean of the last 4 weeks = (900 + 1600 + 2500 + 3600)/4 = 2150
    # marginal CAC = s^(1-b) / (a b) = sqrt(2150) / 0.5 = 92.74; blended = 9100 / 210 = 43.33; 92.74 > 65
    assert search["current_spend"] == 2150.0
    assert search["marginal_cac"] == pytest.approx(math.sqrt(2150) / 0.5)
    assert search["blended_cac"] == pytest.approx(9100 / 210)
    assert bool(search["saturated"]) is True
    assert "saturated: marginal CAC 92.7 is above 1.5 × blended CAC 43.3" in search["note"]

    social = got[got["channel"] == "social"].iloc[0]
    # linear: a = 0.1, b = 1 -> marginal CAC = 1/0.1 = 10 = blended 2100/210 -> not saturated
    assert (social["a"], social["b"]) == (pytest.approx(0.1), pytest.approx(1.0))
    assert social["marginal_cac"] == pytest.approx(10.0) and social["blended_cac"] == pytest.approx(10.0)
    assert bool(social["saturated"]) is False


def test_channels_without_a_fit_say_why(world):
    got = channel_saturation(world).set_index("channel")
    few, flat = got.loc["few"], got.loc["flat"]
    assert few["weeks"] == 3 and math.isnan(few["a"]) and math.isnan(few["b"]) and pd.isna(few["saturated"])
    assert few["note"] == ("Only 3 complete week(s) with both spend and new users; at least 6 are needed for a fit.")
    assert math.isnan(flat["b"]) and pd.isna(flat["saturated"])
    assert flat["note"] == "Weekly spend never changed, so the response of users to spend cannot be measured."
    # blended CAC is still shown: 600 / 62
    assert flat["blended_cac"] == pytest.approx(600 / 62)
    # a lower min_weeks lets 'few' be fitted
    refit = channel_saturation(world, SaturationParams(min_weeks=3)).set_index("channel")
    assert refit.loc["few", "weeks"] == 3 and not math.isnan(refit.loc["few", "b"])


def test_date_range_limits_the_weeks(world):
    f = Filters(start=date(2024, 1, 1), end=date(2024, 1, 21))   # three whole weeks
    got = channel_saturation(world, SaturationParams(filters=f)).set_index("channel")
    assert got.loc["search", "weeks"] == 3 and math.isnan(got.loc["search", "b"])


@pytest.mark.parametrize("kwargs, message", [
    ({"min_weeks": 2}, "at least 3"),
    ({"saturation_factor": 1.0}, "above 1"),
    ({"timezone": "Nowhere/City"}, "time zone"),
])
def test_bad_params(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        SaturationParams(**kwargs)
