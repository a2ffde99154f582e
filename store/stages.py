"""Default AARRR stage guesses from event names (SPEC §3), as a portable SQL CASE expression.

Stored in ``stage_map`` when an event name is first loaded; the user can change it afterwards and
later loads never overwrite an existing entry. 'none' means the event belongs to no stage.
"""
from __future__ import annotations

STAGES = ("acquisition", "activation", "retention", "revenue", "referral", "none")

# (stage, patterns matched against the lower-cased event name), first match wins.
GUESSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("referral", ("invite", "share", "refer")),
    ("revenue", ("purchase", "pay", "order", "checkout_complete", "subscribe")),
    ("activation", ("activat", "onboard", "first_")),
    ("acquisition", ("signup", "sign_up", "register", "install", "注册")),
)


def guess_stage(event_name: str) -> str | None:
    """The default stage for ``event_name``, or None."""
    name = event_name.lower()
    for stage, patterns in GUESSES:
        if any(p in name for p in patterns):
            return stage
    return None


def guess_stage_sql(expr: str) -> str:
    """SQL twin of :func:`guess_stage` over the VARCHAR expression ``expr``."""
    whens = []
    for stage, patterns in GUESSES:
        cond = " OR ".join(f"strpos(lower({expr}), '{p}') > 0" for p in patterns)
        whens.append(f"WHEN {cond} THEN '{stage}'")
    return "(CASE " + " ".join(whens) + " END)"
