"""Header → canonical column mapping by aliases (English and Chinese), overridable.

A header matches an alias after normalisation: trimmed, case-folded, with spaces, dashes and
dots turned into underscores and a leading '$' dropped (so "User ID", "user-id" and "$user_id"
all match ``user_id``). An explicit mapping ``{canonical: header}`` wins over the aliases;
mapping a canonical column to ``None`` or "" unmaps it.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .errors import LoadRefused
from .formats import headers_shown

ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "events": {
        "event_id": ("event_id", "eventid", "uuid", "insert_id", "事件id", "事件编号"),
        "user_id": ("user_id", "userid", "uid", "distinct_id", "user", "customer_id", "member_id",
                    "用户id", "用户", "用户编号", "会员id"),
        "event_name": ("event_name", "event", "event_type", "action", "事件", "事件名", "事件名称", "行为"),
        "event_time": ("event_time", "timestamp", "time", "ts", "datetime", "created_at", "occurred_at",
                       "date_time", "时间", "事件时间", "发生时间", "时间戳"),
        "session_id": ("session_id", "sessionid", "session", "会话id", "会话"),
        "channel": ("channel", "utm_source", "source", "渠道", "来源", "渠道来源"),
        "campaign": ("campaign", "utm_campaign", "campaign_name", "活动", "广告活动", "活动名称"),
        "page": ("page", "url", "page_url", "path", "page_path", "current_url", "页面", "页面路径", "网址"),
        "revenue": ("revenue", "amount", "price", "gmv", "order_amount", "金额", "收入", "订单金额", "营收"),
    },
    "spend": {
        "date": ("date", "day", "日期", "时间"),
        "channel": ("channel", "utm_source", "source", "渠道", "来源"),
        "campaign": ("campaign", "utm_campaign", "campaign_name", "活动", "广告活动", "活动名称"),
        "spend": ("spend", "cost", "amount", "budget_spent", "花费", "消耗", "成本", "费用"),
        "impressions": ("impressions", "impr", "views", "展示", "曝光", "展示量", "曝光量"),
        "clicks": ("clicks", "click", "点击", "点击量"),
        "currency": ("currency", "币种", "货币"),
    },
    "survey": {
        "segment": ("segment", "group", "cohort", "细分", "分群", "人群"),
        "product": ("product", "brand", "产品", "品牌"),
        "dimension": ("dimension", "factor", "attribute", "维度", "因素"),
        "kind": ("kind", "type", "value_or_cost", "类型"),
        "score": ("score", "rating", "评分", "分数", "得分"),
        "respondent_id": ("respondent_id", "respondent", "user_id", "受访者", "受访者id"),
    },
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "events": ("user_id", "event_name", "event_time"),
    "spend": ("date", "channel", "spend"),
    "survey": ("segment", "product", "dimension", "kind", "score"),
}


def normalise_header(header: str) -> str:
    h = str(header).strip().lstrip("\ufeff").casefold()
    h = h.lstrip("$")
    return re.sub(r"[\s\-.]+", "_", h)


def detect_mapping(kind: str, headers: Sequence[str], explicit: Mapping[str, str | None] | None = None,
                   source: str = "file") -> dict[str, str]:
    """Return ``{canonical: header}`` for ``headers``; raise :class:`LoadRefused` on conflicts or gaps."""
    aliases = ALIASES[kind]
    explicit = dict(explicit or {})
    unknown = [c for c in explicit if c not in aliases]
    if unknown:
        raise LoadRefused(
            f"{source}: cannot map unknown column(s) {', '.join(unknown)}; "
            f"known {kind} columns are {', '.join(aliases)}."
        )
    mapping: dict[str, str] = {}
    for canonical, header in explicit.items():
        if header in (None, ""):
            continue
        if header not in headers:
            raise LoadRefused(
                f"{source}: the mapping names column '{header}' for {canonical}, but the file has no such "
                f"column. Columns found: {headers_shown(list(headers))}."
            )
        mapping[canonical] = header
    taken = set(mapping.values())
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(normalise_header(h), h)
    for canonical, names in aliases.items():
        if canonical in explicit:
            continue
        for name in names:
            header = by_norm.get(normalise_header(name))
            if header is not None and header not in taken:
                mapping[canonical] = header
                taken.add(header)
                break
    missing = [c for c in REQUIRED[kind] if c not in mapping]
    if missing:
        raise LoadRefused(
            f"{source}: no column for {', '.join(missing)} (required for {kind}). "
            f"Columns found: {headers_shown(list(headers))}. "
            f"Rename the column or give a mapping such as {missing[0]}=<your column>."
        )
    return mapping
