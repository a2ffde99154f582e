"""AppTest checks of the Operations pages (Funnel, Retention, Revenue & referral) on a five-user log
whose numbers are worked out by hand below, plus the empty-database and bad-input paths.

The log (UTC; the sidebar's default range is its first to last day, 2026-03-02 .. 2026-03-30, and
the data ends at 2026-03-30 12:00). Weeks start on Monday: W0 = 03-02, W1 = 03-09, W2 = 03-16,
W3 = 03-23, W4 = 03-30 (still running at the end of the data).

    u1 wechat  page_view 03-02 09:00, signup 09:10, activate 03-03 09:00, invite 03-04,
               purchase 03-05 09:00 (+100), refund 03-06 (−20)                       active W0
    u2 wechat  page_view 03-02 10:00, signup 12:00, app_open 03-20                   active W0, W2
    u3 douyin  page_view 03-03 08:00                                                 active W0
    u4 douyin  page_view 03-25 10:00, signup 11:00 with inviter_id=u1               active W3
    u5 direct  page_view 03-09 10:00, signup 10:30, activate 03-10 10:30, invite 03-11,
               purchase 03-30 12:00 (+50)                                            active W1, W4
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import store
from tests.conftest import journeys_frame

ROOT = Path(__file__).resolve().parent.parent

LOG = {
    "u1": [("page_view", "2026-03-02 09:00", {"channel": "wechat"}), ("signup", "2026-03-02 09:10"),
           ("activate", "2026-03-03 09:00"), ("invite", "2026-03-04 10:00"),
           ("purchase", "2026-03-05 09:00", {"revenue": 100}), ("refund", "2026-03-06 09:00", {"revenue": -20})],
    "u2": [("page_view", "2026-03-02 10:00", {"channel": "wechat"}), ("signup", "2026-03-02 12:00"),
           ("app_open", "2026-03-20 10:00")],
    "u3": [("page_view", "2026-03-03 08:00", {"channel": "douyin"})],
    "u4": [("page_view", "2026-03-25 10:00", {"channel": "douyin"}),
           ("signup", "2026-03-25 11:00", {"inviter_id": "u1"})],
    "u5": [("page_view", "2026-03-09 10:00"), ("signup", "2026-03-09 10:30"), ("activate", "2026-03-10 10:30"),
           ("invite", "2026-03-11 10:00"), ("purchase", "2026-03-30 12:00", {"revenue": 50})],
}


@pytest.fixture(scope="module")
def log_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ops") / "ops.duckdb")
    con = store.connect(path)
    report = store.load_events(con, journeys_frame(LOG))
    assert report.rejected == 0
    con.close()
    return path


def _app(monkeypatch, path: str, page: str, lang: str = "en") -> AppTest:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OPSFUNNEL_DB", path)
    monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _arr(value):
    """A plotly array from a chart spec (plotly 6+ stores numeric arrays base64-encoded)."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:  # a text such as "6, 8"
            return out.reshape([int(n) for n in str(value["shape"]).split(",")])
        return out
    return np.asarray(value)


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _trace(chart: dict, name: str) -> dict:
    return next(t for t in chart["data"] if t.get("name") == name)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _every_chart_has_caption_sql_and_csv(at) -> None:
    n = len(at.get("plotly_chart"))
    assert n > 0
    assert sum(e.label == "Show SQL" for e in at.expander) >= n
    assert len(at.get("download_button")) >= n


def test_funnel_numbers(monkeypatch, log_db):
    at = _app(monkeypatch, log_db, "funnel")
    # Steps page_view → signup → activate → purchase, ordered, 14 days, best attempt.
    # step 1: u1..u5 = 5; step 2 (signup): u1, u2, u4, u5 = 4, u3 dropped (window closed 03-17);
    # step 3 (activate): u1, u5 = 2; u2 dropped; u4 in progress (03-25 10:00 + 14 d > 03-30 12:00);
    # step 4 (purchase): u1 (03-05 < 03-16 09:00) = 1; u5's purchase 03-30 is after 03-23 10:00: dropped.
    assert _metrics(at) == {"Entered (step 1)": "5", "Reached the last step": "1",
                            "Conversion from first step": "20.0%", "In progress": "1"}
    conv, ttc = _charts(at)[:2]
    assert _arr(_trace(conv, "Users")["y"]).tolist() == [5, 4, 2, 1]
    assert _arr(_trace(conv, "Dropped")["y"]).tolist() == [0, 1, 1, 1]
    assert _arr(_trace(conv, "In progress")["y"]).tolist() == [0, 0, 1, 0]
    assert _trace(conv, "Users")["x"] == ["1. page_view<br><b>5</b> · 100.0%", "2. signup<br><b>4</b> · 80.0%",
                                          "3. activate<br><b>2</b> · 40.0%", "4. purchase<br><b>1</b> · 20.0%"]
    # Time to convert, hours: step 2 = u1 600 s, u2 7200 s, u4 3600 s, u5 1800 s → median 2700 s = 0.75 h,
    # mean 13200 / 4 = 3300 s; step 3 = u1 85800 s, u5 86400 s → median 86100 s; step 4 = u1 172800 s = 48 h.
    # (drawn in hours, so the legend names carry no "(s)")
    median = _arr(_trace(ttc, "Median time from previous step")["y"])
    np.testing.assert_allclose(median, [2700 / 3600, 86100 / 3600, 48.0])
    np.testing.assert_allclose(_arr(_trace(ttc, "Mean time from previous step")["y"]),
                               [3300 / 3600, 86100 / 3600, 48.0])
    table = at.dataframe[1].value
    assert table["dropped"].tolist() == [0, 1, 1, 1] and table["users"].tolist() == [5, 4, 2, 1]
    _every_chart_has_caption_sql_and_csv(at)

    # Users at a step: reached step 2 = u1, u2, u4, u5; dropped at step 3 = u2 (u4 is still in progress).
    # The count is read off the funnel table; the ids are listed (a query and a CSV) only when asked for.
    at.selectbox(key="funnel_users_step_en").set_value(2).run()
    assert any(c.value.startswith("Users who reached step 2: 4.") for c in at.caption)
    assert len(at.dataframe) == 2 and not any(b.key == "funnel_users_csv" for b in at.get("download_button"))
    at.toggle(key="funnel_users_list").set_value(True).run()
    assert at.dataframe[2].value["user_id"].tolist() == ["u1", "u2", "u4", "u5"]
    assert any(c.value == "The first 4 of 4 user ids, sorted; the CSV has them all." for c in at.caption)
    csv = next(b for b in at.get("download_button") if b.proto.id.endswith("funnel_users_csv"))
    assert csv.proto.label == "Download CSV"
    at.selectbox(key="funnel_users_step_en").set_value(3).run()
    at.radio(key="funnel_users_status_en").set_value("dropped").run()
    assert at.dataframe[2].value["user_id"].tolist() == ["u2"]
    assert any(c.value.startswith("Users who dropped at step 3: 1 ") for c in at.caption)
    # nobody dropped at step 1: no list to offer
    at.selectbox(key="funnel_users_step_en").set_value(1).run()
    assert any(c.value.startswith("Users who dropped at step 1: 0 ") for c in at.caption)
    assert len(at.dataframe) == 2 and not at.get("toggle")


def test_funnel_breakdown_and_strict_order(monkeypatch, log_db):
    at = _app(monkeypatch, log_db, "funnel")
    at.selectbox(key="funnel_breakdown_en").set_value("channel").run()
    assert not at.exception and not at.error
    conv = _charts(at)[0]
    # first-touch channel: wechat u1, u2 → 2, 2, 1, 1; douyin u3, u4 → 2, 1, 0, 0; direct u5 → 1, 1, 1, 0
    users = {t["name"]: _arr(t["y"]).tolist() for t in conv["data"]}
    assert users == {"wechat": [2, 2, 1, 1], "douyin": [2, 1, 0, 0], "direct": [1, 1, 1, 0]}
    # Strict order: u1's invite (03-04) comes between activate and purchase, so u1 stops at step 3.
    at.selectbox(key="funnel_breakdown_en").set_value("none").run()
    at.radio(key="funnel_order_en").set_value("strict").run()
    assert _arr(_trace(_charts(at)[0], "Users")["y"]).tolist() == [5, 4, 2, 0]


def test_funnel_bad_steps_show_the_metric_message(monkeypatch, log_db):
    at = _app(monkeypatch, log_db, "funnel")
    at.session_state["funnel_steps"] = {"edited_rows": {}, "added_rows": [], "deleted_rows": [1, 2, 3]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == ["A funnel needs 2 to 20 steps; this one has 1."]
    # a property without a value is refused with a sentence, not a traceback
    at.session_state["funnel_steps"] = {"edited_rows": {0: {"property": "page"}}, "added_rows": [],
                                        "deleted_rows": []}
    at.run()
    assert not at.exception
    assert any("Give a value for the property 'page'" in e.value for e in at.error)


def test_any_order_with_steps_that_can_share_an_event_says_counts_are_an_upper_bound(monkeypatch, log_db):
    at = _app(monkeypatch, log_db, "funnel")
    assert not at.warning                                       # the default steps are distinct events
    at.radio(key="funnel_order_en").set_value("any").run()
    assert not at.warning
    # step 2 becomes page_view too: the same step twice needs two page views, an exact count
    at.session_state["funnel_steps"] = {"edited_rows": {1: {"event": "page_view"}}, "added_rows": [],
                                        "deleted_rows": []}
    at.run()
    assert not at.exception and not at.warning
    # step 2 becomes a page view of one page: one page view of it could fill both steps, solved exactly
    # as a matching of distinct events to steps
    at.session_state["funnel_steps"] = {"edited_rows": {1: {"event": "page_view", "property": "page",
                                                            "value": "/pricing"}},
                                        "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception and not at.warning
    # seven distinct steps that overlap (page views of three more pages): beyond the exact matching's
    # reach, so the counts are an upper bound and the page says so
    at.session_state["funnel_steps"] = {"edited_rows": {1: {"event": "page_view", "property": "page",
                                                            "value": "/pricing"}},
                                        "added_rows": [{"event": "page_view", "property": "page", "value": f"/p{i}"}
                                                       for i in range(3)],
                                        "deleted_rows": []}
    at.run()
    assert not at.exception
    assert [w.value for w in at.warning] and "upper bound" in at.warning[0].value


def test_retention_heatmap_censoring_and_average(monkeypatch, log_db):
    at = _app(monkeypatch, log_db, "retention")
    heat = _charts(at)[0]["data"][0]
    # Cohorts (first-ever event) W0 = u1, u2, u3; W1 = u5; W2 none; W3 = u4; W4 none.
    # W0: period 2 = W2 (u2) 1/3; period 4 = W4, still running → "0%*"; periods 5+ not started → blank.
    # W1: period 3 = W4 (u5's purchase) 1/1, running → "100%*".  W3: period 1 = W4 0/1 running.
    # Average over complete cells: p1 = 0/(3+1); p2 = 1/(3+1) = 25%; p3 = 0/3 (W1's p3 is incomplete);
    # p4 has no complete cell → blank.
    assert heat["y"] == ["Average (complete cells)", "2026-03-02 · n=3", "2026-03-09 · n=1", "2026-03-16 · n=0",
                         "2026-03-23 · n=1", "2026-03-30 · n=0"]
    text = heat["text"]
    assert text[0] == ["100%", "0%", "25%", "0%", "", "", "", ""]
    assert text[1] == ["100%", "0%", "33%", "0%", "0%*", "", "", ""]
    assert text[2] == ["100%", "0%", "0%", "100%*", "", "", "", ""]
    assert text[3] == [""] * 8
    assert text[4] == ["100%", "0%*", "", "", "", "", "", ""]
    z = _arr(heat["z"]).astype(float)
    assert np.isnan(z[1, 5]) and z[1, 4] == 0.0  # future cell blank, running cell 0
    _every_chart_has_caption_sql_and_csv(at)
    captions = " ".join(c.value for c in at.caption)
    # DAU / WAU / MAU on the last day 03-30: DAU = u5; MAU (03-01 .. 03-30) = all five users.
    assert "Last day: DAU 1, MAU 5, stickiness 20.0%" in captions
    # Lifecycle, week of 03-30: u5 resurrecting (active W1, not W3); u4 dormant (active W3, not W4), drawn below 0.
    life = _charts(at)[3]
    assert _arr(_trace(life, "resurrecting")["y"]).tolist()[-1] == 1
    assert _arr(_trace(life, "dormant")["y"]).tolist()[-1] == -1
    # Curves by channel: douyin cohorts (u3 in W0, u4 in W3): p1 = 0 / 1 over the complete cell only.
    curves = {t["name"]: t for t in _charts(at)[1]["data"]}
    assert set(curves) == {"wechat (n=2)", "douyin (n=2)", "direct (n=1)"}
    # wechat (u1, u2, both W0): period 2 = u2 → 1/2.
    np.testing.assert_allclose(_arr(curves["wechat (n=2)"]["y"]), [1.0, 0.0, 0.5, 0.0])
    # split by campaign instead: the curves change, the matrix (summed from the split) stays as it was
    at.radio(key="retention_curve_by_en").set_value("campaign").run()
    assert not at.exception and _charts(at)[0]["data"][0]["text"] == text
    assert {t["name"] for t in _charts(at)[1]["data"]} == {"(none) (n=5)"}   # no user came with a campaign


def test_retention_options_change_the_matrix(monkeypatch, log_db):
    at = _app(monkeypatch, log_db, "retention")
    # On or after: W0's period 1 now counts u2 (active again in W2) → 1/3.
    at.radio(key="retention_criterion_en").set_value("on_or_after").run()
    assert not at.exception and not at.error
    assert _charts(at)[0]["data"][0]["text"][1][:3] == ["100%", "33%", "33%"]
    # The choice survives a switch to Chinese (the option labels change, so the widget is a new one).
    at.session_state["lang"] = "zh"
    at.run()
    assert at.radio(key="retention_criterion_zh").value == "on_or_after"
    assert at.radio(key="retention_criterion_zh").index == 1
    assert _charts(at)[0]["data"][0]["text"][1][:3] == ["100%", "33%", "33%"]
    at.session_state["lang"] = "en"
    at.run()
    assert at.radio(key="retention_criterion_en").value == "on_or_after"
    # Start event signup, return event purchase: W0 cohort = u1, u2 (signups 03-02); nobody buys in a later week
    # except u5 (W1 cohort, purchase in W4 → period 3, running).
    at.radio(key="retention_criterion_en").set_value("on").run()
    at.selectbox(key="retention_start_en").set_value("signup").run()
    at.selectbox(key="retention_return_en").set_value("purchase").run()
    heat = _charts(at)[0]["data"][0]
    assert heat["y"][1] == "2026-03-02 · n=2"
    assert heat["text"][2][:4] == ["100%", "0%", "0%", "100%*"]


def test_revenue_and_referral_numbers(monkeypatch, log_db):
    at = _app(monkeypatch, log_db, "revenue_referral")
    # Acquired = 5; paying = u1, u5 → 40%; net revenue 100 − 20 + 50 = 130; GMV 150; ARPU 130 / 5 = 26;
    # ARPPU 130 / 2 = 65. Referral: 5 active users, inviters u1, u5, 2 invites, 1 invited sign-up (u4 names
    # u1) → conversion 1 / 2 = 50 %, K = 2 / 5 × 0.5 = 0.2.
    assert _metrics(at) == {"Acquired users": "5", "Paying rate": "40.0%", "Net revenue": "¥130", "GMV": "¥150",
                            "ARPU": "¥26.00", "ARPPU": "¥65.00", "Active users": "5", "Inviters": "2",
                            "Invites": "2", "Invited sign-ups": "1", "Invite conversion": "50.0%",
                            "K-factor": "0.200"}
    channel, cohorts, k_week, k_channel = _charts(at)
    # ARPU by channel, one row each, highest first (on top): direct (u5) 50; wechat (u1, u2) 80 / 2 = 40; douyin
    # (u3, u4) 0; the paying rate (diamonds, top axis) 1 / 1, 1 / 2, 0 / 2
    rows = ["direct<br>¥50.0 · 100.0%", "wechat<br>¥40.0 · 50.0%", "douyin<br>¥0.0 · 0.0%"]
    assert channel["data"][0]["y"] == rows and channel["data"][1]["y"] == rows
    np.testing.assert_allclose(_arr(channel["data"][0]["x"]), [50.0, 40.0, 0.0])
    np.testing.assert_allclose(_arr(channel["data"][1]["x"]), [1.0, 0.5, 0.0])
    assert channel["data"][1]["xaxis"] == "x2" and channel["layout"]["yaxis"]["autorange"] == "reversed"
    # Revenue by acquisition week: W0 (u1, u2, u3) 80; W1 (u5) 50; W2 none; W3 (u4) 0; W4 none.
    np.testing.assert_allclose(_arr(cohorts["data"][0]["y"]), [80.0, 50.0, 0.0, 0.0, 0.0])
    # K per week, all channels = invited sign-ups / active users: W0 0/3, W1 0/1, W2 0/1, W3 1/1 (u4's sign-up
    # credited to u1's channel), W4 0/1.
    np.testing.assert_allclose(_arr(_trace(k_week, "All channels")["y"]), [0.0, 0.0, 0.0, 1.0, 0.0])
    # K per channel: wechat = 1 invite / 2 users × 1 sign-up / 1 invite = 0.5; direct = 1 / 1 × 0 / 1 = 0.
    k = dict(zip(k_channel["data"][0]["x"], _arr(k_channel["data"][0]["y"]).astype(float)))
    assert k["wechat"] == 0.5 and k["direct"] == 0.0
    _every_chart_has_caption_sql_and_csv(at)
    # Month cohorts: all five users arrived in March 2026 → one bar of 130, and the KPIs stay.
    at.radio(key="revref_period_en").set_value("month").run()
    assert not at.exception and not at.error
    assert _metrics(at)["Net revenue"] == "¥130" and _metrics(at)["ARPU"] == "¥26.00"
    np.testing.assert_allclose(_arr(_charts(at)[1]["data"][0]["y"]), [130.0])
    np.testing.assert_allclose(_arr(_charts(at)[1]["data"][1]["y"]), [26.0])


def test_date_range_narrows_the_revenue_cohort(monkeypatch, log_db):
    at = _app(monkeypatch, log_db, "revenue_referral")
    from datetime import date
    at.date_input(key="flt_dates").set_value((date(2026, 3, 9), date(2026, 3, 30))).run()
    assert not at.exception and not at.error
    # Acquired in range: u5 (03-09) and u4 (03-25); paying u5 → 50%, revenue 50, ARPU 25, ARPPU 50.
    m = _metrics(at)
    assert (m["Acquired users"], m["Paying rate"], m["Net revenue"], m["ARPU"], m["ARPPU"]) == \
        ("2", "50.0%", "¥50", "¥25.00", "¥50.00")


@pytest.mark.parametrize("page", ["funnel", "retention", "revenue_referral"])
def test_empty_database_shows_a_sentence(monkeypatch, tmp_path, page):
    at = _app(monkeypatch, str(tmp_path / "empty.duckdb"), page)
    assert at.info, "an empty state explains what to do"
    assert not at.get("plotly_chart")


@pytest.mark.parametrize("page", ["funnel", "retention", "revenue_referral"])
def test_chinese_labels(monkeypatch, log_db, page):
    at = _app(monkeypatch, log_db, page, lang="zh")
    assert at.get("plotly_chart")
    assert all(e.label != "Show SQL" for e in at.expander)
    assert any(e.label == "查看 SQL" for e in at.expander)



def _shown_sql(at, marker: str) -> str:
    """The one "Show SQL" text holding ``marker`` (shown once or under more than one chart)."""
    shown = {c.value for c in at.code if marker in c.value}
    assert len(shown) == 1, shown
    return shown.pop()


@pytest.mark.parametrize("page, markers", [
    ("retention", ("-- each active day d covers the days", "-- labelled: active users by how they relate")),
    ("revenue_referral", ("GROUP BY period_start, channel",)),   # the K-factor per week and its table
])
def test_the_sql_shown_is_the_query_that_ran(monkeypatch, log_db, page, markers):
    """DAU / WAU / MAU, the lifecycle and the referral table by week count over the hours with an event in UTC and
    in a zone with summer time (whole hours), and over the events where the hours do not stand (here made to say
    so: every zone the sidebar offers has whole-hour offsets): the SQL a page shows is the one its metric ran,
    either way."""
    import metrics.derive as derive

    at = _app(monkeypatch, log_db, page)
    for marker in markers:
        assert "FROM user_hours h" in _shown_sql(at, marker)
    at.selectbox(key="flt_timezone_en").set_value("America/New_York").run()
    assert not at.exception and not at.error
    for marker in markers:
        sql = _shown_sql(at, marker)
        assert "FROM user_hours h" in sql and "America/New_York" in sql
    monkeypatch.setattr(derive, "hours_ok", lambda *args: False)
    at.selectbox(key="flt_timezone_en").set_value("Europe/London").run()   # another zone: not from the cache
    assert not at.exception and not at.error
    for marker in markers:
        sql = _shown_sql(at, marker)
        assert "FROM events e" in sql and "user_hours" not in sql
