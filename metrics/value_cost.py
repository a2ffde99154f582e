"""Perceived value − perceived cost (SPEC §7): why a segment adopts the product, or a rival.

Query intuition
---------------
A user adopts only when perceived value − perceived cost > 0, and picks us over a rival only when
our margin beats the rival's. A :class:`ValueCostModel` lists :class:`Dimension` s, each a value or a
cost, with a weight and one source:

- ``survey``: the mean 0–10 score of the dimension in the survey table, per segment and product
  (one SQL aggregate);
- ``behaviour``: a proxy computed from events per segment (one SQL pass over the acquired users of
  the filter, the same users as :mod:`metrics.economics`, or over their per-user rollups when no segment
  is set), mapped to 0–10 by a transform:

  ==========  ===================================================  ==================================
  transform   formula                                              used by
  ==========  ===================================================  ==================================
  ``rate``    10 × rate                                            activation, retention, drop-offs
  ``time``    10 × min(median hours / time_ceiling_hours, 1)       time to activation
  ``money``   10 × min(ARPPU / reference_price, 1)                 money
  ==========  ===================================================  ==================================

Behaviour metric keys (``Dimension.metric``): ``activation_rate`` (activated within 7 days / users),
``retention_w1`` (active in days 7–13 / users observed 14 days), ``paying_rate`` (users with revenue > 0
/ users), ``hours_to_activate`` (median hours from first_seen to the first activation event, over
activated users), ``learning_dropoff`` (1 − activated / signed-up, over users with a sign-up event),
``trust_dropoff`` (mean of the sign-up drop-off 1 − signed-up / users and the payment drop-off
1 − paying / activated; only the defined one when the other has no users) and ``arppu`` (net revenue / paying users).

Segments: ``channel`` (default; survey segments are matched to channel keys, trimmed and case-folded),
``campaign`` (behaviour per campaign; a campaign takes the survey ratings of its own name, else those of
its channel, since surveys are usually by channel; users without a campaign form their channel's
segment, e.g. ``organic``) or ``survey`` (survey dimensions only).

Scoring, per segment: weights are normalised within each kind over the dimensions **that have data
for the segment**; a dimension with no data is listed in ``missing`` and left out (never read as 0).
value = Σ w·score over value dimensions, cost likewise, score = value − cost ∈ [−10, 10]. A kind whose
dimensions all lack data makes the score NULL ("no data").

A rival has survey ratings only, so the rival comparison uses the survey dimensions rated for both
products in the segment: both products are scored on exactly those dimensions (weights renormalised
the same way) and the verdict says ``beats <rival>`` or ``loses to <rival>``. The diagnosis names the
dimension with the largest weighted gap against us (value: w·(rival − ours); cost: w·(ours − rival)),
e.g. "trust cost 7.4 vs rival 3.9"; without a rival, the largest weighted cost.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from store.errors import UserInputError
from store.sqlutil import normalise_key

from . import economics
from .economics import DAY_S, WEEK_S, acquired_sql, segment_sql, validate_common
from .filters import Filters
from .labels import label as _label

KINDS = ("value", "cost")
SOURCES = ("survey", "behaviour")
TRANSFORMS = ("rate", "time", "money")
METRICS = {"activation_rate": "rate", "retention_w1": "rate", "paying_rate": "rate",
           "hours_to_activate": "time", "learning_dropoff": "rate", "trust_dropoff": "rate", "arppu": "money"}
SEGMENT_BY = ("channel", "campaign", "survey")
COSTS = ("money", "time", "learning", "trust", "emotion", "safety")
# behaviour proxies for the costs the survey may lack (SPEC §7); emotion and safety have none
COST_PROXIES = {"money": ("arppu", "money"), "time": ("hours_to_activate", "time"),
                "learning": ("learning_dropoff", "rate"), "trust": ("trust_dropoff", "rate")}
VALUE_PROXIES = (("activation", "activation_rate"), ("week-1 retention", "retention_w1"),
                 ("paying conversion", "paying_rate"))


@dataclass(frozen=True)
class Dimension:
    name: str
    kind: str
    weight: float = 1.0
    source: str = "survey"
    metric: str | None = None
    transform: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "name", str(self.name).strip().lower())
        if not self.name:
            raise UserInputError("Every dimension needs a name.")
        if self.kind not in KINDS:
            raise UserInputError(f"Dimension {self.name}: kind must be 'value' or 'cost', not {self.kind!r}.")
        if self.source not in SOURCES:
            raise UserInputError(f"Dimension {self.name}: source must be 'survey' or 'behaviour', not {self.source!r}.")
        if not isinstance(self.weight, (int, float)) or not np.isfinite(self.weight) or self.weight <= 0:
            raise UserInputError(f"Dimension {self.name}: the weight must be a positive number.")
        if self.source == "behaviour":
            if self.metric not in METRICS:
                raise UserInputError(f"Dimension {self.name}: a behaviour dimension needs a metric, one of "
                                     f"{', '.join(METRICS)}.")
            if self.transform is None:
                object.__setattr__(self, "transform", METRICS[self.metric])
            if self.transform not in TRANSFORMS:
                raise UserInputError(f"Dimension {self.name}: transform must be one of {', '.join(TRANSFORMS)}.")


@dataclass(frozen=True)
class ValueCostModel:
    dimensions: tuple[Dimension, ...]
    reference_price: float = 500.0
    time_ceiling_hours: float = 168.0
    activation_days: int = 7

    def __post_init__(self):
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        if not self.dimensions:
            raise UserInputError("A value − cost model needs at least one dimension.")
        names = [d.name for d in self.dimensions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UserInputError(f"Each dimension may appear once (one source per name); repeated: {', '.join(dupes)}.")
        if not self.reference_price or self.reference_price <= 0:
            raise UserInputError("The reference price must be a positive amount.")
        if not self.time_ceiling_hours or self.time_ceiling_hours <= 0:
            raise UserInputError("The time ceiling must be a positive number of hours.")


def default_model(con=None) -> ValueCostModel:
    """Survey value dimensions found in the survey, behaviour value proxies, and the six costs.

    Each cost (money, time, learning, trust, emotion, safety) is taken from the survey when the survey
    rates it, else from its behaviour proxy (money: ARPPU; time: hours to activate; learning: sign-up →
    activation drop-off; trust: sign-up and payment drop-off); emotion and safety have no proxy and stay
    survey dimensions (reported missing without ratings). Other cost dimensions in the survey are added.
    """
    survey_dims: list[tuple[str, str]] = []
    if con is not None:
        survey_dims = [(r[0], r[1]) for r in con.execute(
            "SELECT dimension, min(kind) FROM survey GROUP BY dimension ORDER BY dimension").fetchall()]
    survey_names = {name for name, _ in survey_dims}
    proxies = {name for name, _ in VALUE_PROXIES}
    dims = [Dimension(name, "value", source="survey") for name, kind in survey_dims
            if kind == "value" and name not in proxies]
    dims += [Dimension(name, "value", source="behaviour", metric=metric) for name, metric in VALUE_PROXIES]
    for name in COSTS:
        if name in survey_names or name not in COST_PROXIES:
            dims.append(Dimension(name, "cost", source="survey"))
        else:
            metric, transform = COST_PROXIES[name]
            dims.append(Dimension(name, "cost", source="behaviour", metric=metric, transform=transform))
    dims += [Dimension(name, "cost", source="survey") for name, kind in survey_dims
             if kind == "cost" and name not in COSTS]
    return ValueCostModel(tuple(dims))


# ---------------------------------------------------------------------------------------------
# Inputs: survey means and behaviour proxies
# ---------------------------------------------------------------------------------------------

def survey_means_sql() -> tuple[str, list]:
    return ("""
-- survey_means: mean score per segment, product and dimension
SELECT lower(trim(segment)) AS segment, product, dimension, avg(score) AS score, count(*) AS ratings
FROM survey
GROUP BY ALL
ORDER BY 1, 2, 3
""", [])


def _user_stats_sql(filters: Filters | None, seg: str) -> str:
    """CTEs ending in ``user_stats``: sign-up, activation, week-1 activity and revenue per acquired user with
    events in the segment. Without a segment they come from the per-user rollups (see :mod:`metrics.economics`):
    the sign-up and the first activation from ``user_events``, week 1 from ``user_days`` (days 7 to 13), the
    money from the events with revenue; every acquired user then has events, so all are kept."""
    if not economics.rollups_ok(filters):
        return f"""-- user_events: events of acquired users with their age in seconds since first_seen
user_events AS (
    SELECT e.user_key, e.revenue, sm.stage, EXTRACT(EPOCH FROM e.event_time - a.first_seen) AS age
    FROM acquired a
    JOIN events e ON e.user_key = a.user_key
    LEFT JOIN stage_map sm ON sm.event_name = e.event_name
    WHERE {seg}
),
-- user_stats: sign-up, activation, week-1 activity, revenue per user (grouped on the integer key)
user_stats AS (
    SELECT user_key,
           max(CASE WHEN stage = 'acquisition' THEN 1 ELSE 0 END) AS signed_up,
           max(CASE WHEN stage = 'activation' AND age < ? THEN 1 ELSE 0 END) AS activated,
           min(CASE WHEN stage = 'activation' THEN age END) / 3600.0 AS hours_to_activate,
           max(CASE WHEN age >= {WEEK_S} AND age < {2 * WEEK_S} THEN 1 ELSE 0 END) AS active_w1,
           max(CASE WHEN revenue > 0 THEN 1 ELSE 0 END) AS paying,
           coalesce(sum(revenue), 0) AS revenue
    FROM user_events
    GROUP BY user_key
),"""
    return f"""-- staged: per acquired user, a sign-up (acquisition-stage) event and the first activation-stage event
staged AS ({economics.staged_sql('acquisition', 'activation')}),
-- week1: acquired users with an event aged 7 to 14 days (days of life 7 to 13)
week1 AS ({economics.returned_sql(WEEK_S // DAY_S, 2 * WEEK_S // DAY_S)}),
-- money: per acquired user with revenue events
money AS ({economics.money_sql()}),
-- user_stats: sign-up, activation, week-1 activity, revenue per user
user_stats AS (
    SELECT a.user_key, coalesce(s.signed_up, 0) AS signed_up,
           CASE WHEN EXTRACT(EPOCH FROM s.first_activation - a.first_seen) < ? THEN 1 ELSE 0 END AS activated,
           EXTRACT(EPOCH FROM s.first_activation - a.first_seen) / 3600.0 AS hours_to_activate,
           CASE WHEN w.user_key IS NULL THEN 0 ELSE 1 END AS active_w1,
           coalesce(mo.paying, 0) AS paying, coalesce(mo.revenue, 0) AS revenue
    FROM acquired a
    LEFT JOIN staged s ON s.user_key = a.user_key
    LEFT JOIN week1 w ON w.user_key = a.user_key
    LEFT JOIN money mo ON mo.user_key = a.user_key
),"""


def behaviour_sql(segment_by: str, filters: Filters | None, activation_days: int = 7) -> tuple[str, list]:
    """Per-segment behaviour proxies over the acquired users of ``filters`` (one pass over their events)."""
    # campaign mode: users without a campaign are their channel's (organic, direct)
    seg_col = "coalesce(NULLIF(a.campaign, ''), a.channel)" if segment_by == "campaign" else "a.channel"
    acq, acq_params = acquired_sql(filters)
    seg, seg_params = segment_sql(filters, "e")
    sql = f"""
WITH
-- acquired: users whose first_seen is in the range, keyed by first touch
acquired AS ({acq}),
bounds AS (SELECT max(event_time) AS data_end FROM events),
{_user_stats_sql(filters, seg)}
-- per_user: the acquired users that have events in the segment filter
per_user AS (
    SELECT s.*, {seg_col} AS segment, a.channel, EXTRACT(EPOCH FROM b.data_end - a.first_seen) AS observed
    FROM acquired a CROSS JOIN bounds b JOIN user_stats s ON s.user_key = a.user_key
),
-- per_segment: counts and rates per segment
per_segment AS (
    SELECT segment, min(channel) AS channel, count(*) AS users,
           avg(activated) AS activation_rate,
           CAST(sum(CASE WHEN observed >= {2 * WEEK_S} THEN active_w1 ELSE 0 END) AS DOUBLE)
               / NULLIF(sum(CASE WHEN observed >= {2 * WEEK_S} THEN 1 ELSE 0 END), 0) AS retention_w1,
           avg(paying) AS paying_rate,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY hours_to_activate) AS hours_to_activate,
           1 - CAST(sum(CASE WHEN signed_up = 1 AND hours_to_activate IS NOT NULL THEN 1 ELSE 0 END) AS DOUBLE)
               / NULLIF(sum(signed_up), 0) AS learning_dropoff,
           1 - avg(signed_up) AS signup_drop,
           1 - CAST(sum(CASE WHEN paying = 1 AND hours_to_activate IS NOT NULL THEN 1 ELSE 0 END) AS DOUBLE)
               / NULLIF(sum(CASE WHEN hours_to_activate IS NOT NULL THEN 1 ELSE 0 END), 0) AS payment_drop,
           sum(revenue) / NULLIF(sum(paying), 0) AS arppu
    FROM per_user
    GROUP BY segment
)
-- the proxies; trust is the mean of the sign-up and payment drop-offs that are defined
SELECT segment, channel, users, activation_rate, retention_w1, paying_rate, hours_to_activate, learning_dropoff,
       (coalesce(signup_drop, payment_drop) + coalesce(payment_drop, signup_drop)) / 2 AS trust_dropoff, arppu
FROM per_segment
ORDER BY segment
"""
    return sql, acq_params + seg_params + [activation_days * DAY_S]


def _transform(value: pd.Series, transform: str, model: ValueCostModel) -> pd.Series:
    if transform == "rate":
        return (10.0 * value).clip(0, 10)
    if transform == "time":
        return 10.0 * (value / model.time_ceiling_hours).clip(upper=1.0).clip(lower=0)
    return 10.0 * (value / model.reference_price).clip(upper=1.0).clip(lower=0)


def _check(model, segment_by, filters):
    if not isinstance(model, ValueCostModel):
        raise UserInputError("The model must be a ValueCostModel (see default_model()).")
    if segment_by not in SEGMENT_BY:
        raise UserInputError(f"Segment by must be one of {', '.join(SEGMENT_BY)}, not {segment_by!r}.")
    validate_common(filters, filters.timezone if isinstance(filters, Filters) else "UTC")


def dimension_scores(con, model: ValueCostModel, segment_by: str = "channel", rival: str | None = None,
                     filters: Filters | None = None) -> pd.DataFrame:
    """Long form ``[segment, product, dimension, kind, weight, score, weighted, source]``.

    ``product`` is 'ours' or the rival. Our rows carry the weights of our full score (normalised within
    each kind over the dimensions with data); rival rows carry the weights of the survey-only comparison.
    A dimension with no data has score NaN and weight 0.
    """
    _check(model, segment_by, filters)
    rival_key = rival.strip().lower() if rival else None
    survey = con.execute(survey_means_sql()[0]).df()
    survey["segment"] = survey["segment"].map(normalise_key)
    segments: set[str] = set()
    rows = []
    dims = pd.DataFrame([{"dimension": d.name, "kind": d.kind, "w": float(d.weight), "source": d.source,
                          "metric": d.metric, "transform": d.transform} for d in model.dimensions])

    beh = None
    if segment_by != "survey" and ((dims["source"] == "behaviour").any() or segment_by == "campaign"):
        sql, params = behaviour_sql(segment_by, filters, model.activation_days)
        beh = con.execute(sql, params).df()
        beh["segment"] = beh["segment"].replace("", "(none)").fillna("(none)")   # users without a campaign
        segments |= set(beh["segment"])
        for d in dims[dims["source"] == "behaviour"].itertuples():
            rows.append(pd.DataFrame({"segment": beh["segment"], "product": "ours", "dimension": d.dimension,
                                      "score": _transform(beh[d.metric].astype(float), d.transform, model)}))
    survey_names = set(dims.loc[dims["source"] == "survey", "dimension"])
    products = ["ours"] + ([rival_key] if rival_key else [])
    sv = survey[survey["dimension"].isin(survey_names) & survey["product"].isin(products)]
    if segment_by == "campaign" and beh is not None:
        # survey segments are usually channels: a campaign takes its own ratings, else its channel's
        rated = set(sv["segment"])
        pairs = beh[["segment", "channel"]].assign(
            rated_as=lambda f: f["segment"].where(f["segment"].isin(rated), f["channel"]))
        inherited = pairs.merge(sv.rename(columns={"segment": "rated_as"}), on="rated_as")
        leftover = sv[~sv["segment"].isin(set(pairs["rated_as"]) | set(pairs["channel"]))]
        sv = pd.concat([inherited[sv.columns], leftover], ignore_index=True)
    segments |= set(sv["segment"].dropna()) if segment_by == "campaign" else set(survey["segment"].dropna())
    if filters is not None and filters.channels and segment_by == "channel":
        segments &= set(filters.channels)
    if filters is not None and filters.campaigns and segment_by == "campaign":
        segments &= set(filters.campaigns)
    rows.append(sv[["segment", "product", "dimension", "score"]])
    scored = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["segment", "product", "dimension", "score"])

    # the full grid: every segment x dimension for ours; survey dimensions for the rival
    grid = [pd.MultiIndex.from_product([sorted(segments), ["ours"], dims["dimension"]],
                                       names=["segment", "product", "dimension"]).to_frame(index=False)]
    if rival_key:
        grid.append(pd.MultiIndex.from_product([sorted(segments), [rival_key], sorted(survey_names)],
                                               names=["segment", "product", "dimension"]).to_frame(index=False))
    long = pd.concat(grid, ignore_index=True).merge(scored, on=["segment", "product", "dimension"], how="left")
    long = long.merge(dims[["dimension", "kind", "w", "source"]], on="dimension", how="left")
    long["score"] = long["score"].astype(float)

    # rival comparison basis: survey dimensions with data for both products in the segment
    if rival_key:
        have = long[long["score"].notna() & (long["source"] == "survey")]
        both = have.groupby(["segment", "dimension"])["product"].nunique().eq(2).rename("shared").reset_index()
        long = long.merge(both, on=["segment", "dimension"], how="left")
        long["shared"] = long["shared"].fillna(False).astype(bool)
        in_basis = np.where(long["product"] == "ours", long["score"].notna(), long["shared"])
    else:
        in_basis = long["score"].notna().to_numpy()
    long["_w"] = np.where(in_basis, long["w"], 0.0)
    total = long.groupby(["segment", "product", "kind"])["_w"].transform("sum")
    long["weight"] = np.where(total > 0, long["_w"] / total.where(total > 0, 1.0), 0.0)
    long["weighted"] = long["weight"] * long["score"]
    long = long[["segment", "product", "dimension", "kind", "weight", "score", "weighted", "source"]]
    order = {"ours": 0}
    long = long.sort_values(["segment", "product", "kind", "dimension"],
                            key=lambda s: s.map(order).fillna(1) if s.name == "product" else s, kind="stable")
    return long.reset_index(drop=True)


def _kind_sum(frame: pd.DataFrame, kind: str, n_dims: int) -> float:
    part = frame[frame["kind"] == kind]
    avail = part[part["score"].notna()]
    if n_dims == 0:
        return 0.0
    if avail.empty:
        return float("nan")
    w = avail["w"] / avail["w"].sum()
    return float((w * avail["score"]).sum())


def score(con, model: ValueCostModel, segment_by: str = "channel", rival: str | None = None,
          filters: Filters | None = None) -> pd.DataFrame:
    """``[segment, value, cost, score, rival_value, rival_cost, rival_score, verdict, diagnosis, missing,
    shared_score]``.

    ``shared_score`` is our score on the survey dimensions rated for both products (what the verdict
    compares with ``rival_score``); NULL without a rival.
    """
    return scores_of(dimension_scores(con, model, segment_by, rival, filters), model, rival)


def value_cost_page(con, model: ValueCostModel, segment_by: str = "channel", rival: str | None = None,
                    filters: Filters | None = None) -> dict[str, pd.DataFrame]:
    """``{"scores": score(...), "dimensions": dimension_scores(...)}`` from one computation of the dimensions
    (one pass over the acquired users' behaviour), as the Value vs cost page shows both."""
    long = dimension_scores(con, model, segment_by, rival, filters)
    return {"scores": scores_of(long, model, rival), "dimensions": long}


def scores_of(long: pd.DataFrame, model: ValueCostModel, rival: str | None = None) -> pd.DataFrame:
    """:func:`score`'s frame from :func:`dimension_scores`' frame for the same model and rival (pure)."""
    rival_key = rival.strip().lower() if rival else None
    weights = {d.name: float(d.weight) for d in model.dimensions}
    n_kind = {k: sum(d.kind == k for d in model.dimensions) for k in KINDS}
    out = []
    for segment, grp in long.groupby("segment", sort=True):
        ours = grp[grp["product"] == "ours"].assign(w=lambda f: f["dimension"].map(weights))
        value = _kind_sum(ours, "value", n_kind["value"])
        cost = _kind_sum(ours, "cost", n_kind["cost"])
        total = value - cost
        missing = ", ".join(sorted(ours.loc[ours["score"].isna(), "dimension"]))
        verdict = "no data" if np.isnan(total) else ("adopts" if total > 0 else "does not adopt")
        rv = rc = rs = mine_score = float("nan")
        if rival_key:
            shared = set(grp.loc[(grp["product"] == rival_key) & (grp["weight"] > 0), "dimension"])
            mine = ours[ours["dimension"].isin(shared)]
            theirs = grp[(grp["product"] == rival_key) & grp["dimension"].isin(shared)].assign(
                w=lambda f: f["dimension"].map(weights))
            n_shared = {k: int((mine["kind"] == k).sum()) for k in KINDS}
            if shared:
                mv, mc = _kind_sum(mine, "value", n_shared["value"]), _kind_sum(mine, "cost", n_shared["cost"])
                rv, rc = _kind_sum(theirs, "value", n_shared["value"]), _kind_sum(theirs, "cost", n_shared["cost"])
                rs = rv - rc
                mine_score = mv - mc
                if mine_score > rs:
                    verdict += f", beats {rival_key}"
                elif mine_score < rs:
                    verdict += f", loses to {rival_key}"
                else:
                    verdict += f", ties with {rival_key}"
                diagnosis = _rival_diagnosis(mine, theirs)
            else:
                verdict += f", no ratings of {rival_key}"
                diagnosis = _cost_diagnosis(ours)
        else:
            diagnosis = _cost_diagnosis(ours)
        out.append({"segment": segment, "value": value, "cost": cost, "score": total, "rival_value": rv,
                     "rival_cost": rc, "rival_score": rs, "verdict": verdict, "diagnosis": diagnosis,
                     "missing": missing, "shared_score": mine_score})
    cols = ["segment", "value", "cost", "score", "rival_value", "rival_cost", "rival_score", "verdict",
            "diagnosis", "missing", "shared_score"]
    return pd.DataFrame(out, columns=cols)


def _cost_diagnosis(ours: pd.DataFrame) -> str:
    costs = ours[(ours["kind"] == "cost") & ours["score"].notna()]
    if costs.empty:
        return "no cost data"
    top = costs.loc[costs["weighted"].idxmax()]
    return f"{top['dimension']} cost {top['score']:.1f} is the largest weighted cost"


def _rival_diagnosis(mine: pd.DataFrame, theirs: pd.DataFrame) -> str:
    both = mine.merge(theirs, on=["dimension", "kind"], suffixes=("", "_r"))
    w = both["w"] / both.groupby("kind")["w"].transform("sum")
    gap = np.where(both["kind"] == "value", both["score_r"] - both["score"], both["score"] - both["score_r"]) * w
    both = both.assign(gap=gap)
    worst = both.loc[both["gap"].idxmax()]
    if worst["gap"] <= 0:
        return "no dimension trails the rival; " + _cost_diagnosis(mine)
    return f"{worst['dimension']} {worst['kind']} {worst['score']:.1f} vs rival {worst['score_r']:.1f}"



LABELS: dict[str, dict[str, str]] = {
    "value": _label("Perceived value", "感知价值", "Weighted mean of the value dimensions, 0–10.", "价值维度的加权平均，0–10。"),
    "cost": _label("Perceived cost", "感知成本", "Weighted mean of the cost dimensions, 0–10.", "成本维度的加权平均，0–10。"),
    "score": _label("Value − cost score", "价值 − 成本得分", "Perceived value minus perceived cost, −10..10; above 0 the segment adopts.",
                    "感知价值减感知成本，−10..10；大于 0 表示会采用。"),
    "rival_value": _label("Rival perceived value", "竞品感知价值", "The rival's value on the survey dimensions rated for both.",
                          "竞品在双方均有评分的调查维度上的价值。"),
    "rival_cost": _label("Rival perceived cost", "竞品感知成本", "The rival's cost on the survey dimensions rated for both.",
                         "竞品在双方均有评分的调查维度上的成本。"),
    "rival_score": _label("Rival value − cost score", "竞品价值 − 成本得分", "The rival's value minus cost on the shared survey dimensions.",
                          "竞品在共同调查维度上的价值减成本。"),
    "verdict": _label("Verdict", "结论", "Adopts when the score is above 0; beats or loses to the rival on the shared survey dimensions.",
                      "得分大于 0 即会采用；并在共同调查维度上与竞品比较胜负。"),
    "diagnosis": _label("Diagnosis", "诊断", "The dimension that drags the score most.", "对得分拖累最大的维度。"),
    "shared_score": _label("Our score on shared dimensions", "共同维度上的我方得分",
                           "Our value − cost on the survey dimensions rated for both products; the verdict compares it with the rival's.",
                           "我方在双方均有评分的调查维度上的价值 − 成本；结论据此与竞品比较。"),
    "missing": _label("Missing dimensions", "缺失维度", "Dimensions with no data for the segment, left out of the score.",
                      "该细分没有数据、未计入得分的维度。"),
    "weight": _label("Weight", "权重", "The dimension's weight, normalised within its kind.", "维度权重，在同类内归一化。"),
    "weighted": _label("Weighted score", "加权得分", "Weight times score: the dimension's contribution.", "权重乘以得分：该维度的贡献。"),
}
