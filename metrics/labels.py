"""The shape of a metric label: what the UI shows for an output column, in both languages.

Every metric module exposes ``LABELS = {column: label(...)}``; each English label is a heading of
``docs/metrics.md``, where the metric is defined (checked by ``tests/test_docs.py``).
"""
from __future__ import annotations


def label(en: str, zh: str, help_en: str, help_zh: str) -> dict[str, str]:
    """An output column's name and one-line definition in English and Simplified Chinese."""
    return {"en": en, "zh": zh, "help_en": help_en, "help_zh": help_zh}
