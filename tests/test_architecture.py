"""The layering rules the project promises, checked on the source itself."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            out.add(f"{node.func.value.id}.{node.func.attr}")
    return out


def test_metrics_never_import_ui_libraries():
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & {"streamlit", "plotly"})
                 for p in (ROOT / "metrics").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_metrics_exist_and_are_checked():
    # Guards the test above against passing vacuously on an empty or moved package.
    assert len(list((ROOT / "metrics").rglob("*.py"))) >= 5


def test_pages_never_open_connections():
    pages = list((ROOT / "app_pages").glob("*.py"))
    assert pages
    offenders = {p.name: sorted(c for c in _calls(p) if c in {"duckdb.connect", "store.connect"}) for p in pages}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert all("duckdb" not in _imports(p) for p in pages)


def test_set_page_config_only_in_entrypoint():
    pages = [p.name for p in (ROOT / "app_pages").glob("*.py") if "set_page_config" in p.read_text(encoding="utf-8")]
    assert pages == []
