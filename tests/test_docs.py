"""docs/metrics.md, the metric modules' LABELS and the UI agree: one source of definitions."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "metrics.md"
MODULES = ("funnel", "retention", "traffic", "stages", "economics", "saturation", "referral", "value_cost")


def _headings() -> str:
    return "\n".join(line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("#"))


@pytest.mark.parametrize("name", MODULES)
def test_every_label_is_a_defined_heading_in_both_languages(name):
    labels = importlib.import_module(f"metrics.{name}").LABELS
    assert labels, f"metrics.{name} has no LABELS"
    headings = _headings()
    missing = [e["en"] for e in labels.values() if e["en"] not in headings]
    assert missing == []
    untranslated = [k for k, e in labels.items() if not re.search(r"[\u4e00-\u9fff]", e.get("zh", ""))]
    assert untranslated == []
    undefined = [k for k, e in labels.items() if not e.get("help_en") or not e.get("help_zh")]
    assert undefined == []


def test_one_document_holds_the_definitions():
    assert not (ROOT / "docs" / "parts").exists()
    text = DOC.read_text(encoding="utf-8")
    for section in ("## Funnels", "## Retention", "## Traffic", "## AARRR stages and ownership",
                    "## Perceived value − perceived cost", "## Data model and loading rules"):
        assert section in text
