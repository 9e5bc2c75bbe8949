"""Pages only lay out (issue 21): no page defines a cache, a helper function that is not drawn right there, or
its own way to collect a finished background job; they share ``app_support``'s."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PAGES = sorted((Path(__file__).resolve().parents[2] / "pages").glob("*.py"))
JOB_PAGES = ("sequential_attention.py", "compare.py", "sparsity.py")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_a_page_defines_no_cache(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cached = [node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
              and any("cache_" in ast.unparse(d) for d in node.decorator_list)]
    assert cached == [], f"{path.name}: move {cached} to app_support/caches.py or app_support/state.py"


@pytest.mark.parametrize("name", JOB_PAGES)
def test_pages_with_background_jobs_collect_them_through_take_finished_job(name: str):
    path = next(p for p in PAGES if p.name == name)
    source = path.read_text(encoding="utf-8")
    assert "take_finished_job(" in source
    assert ".error is not None" not in source and "st.session_state.pop(JOB_KEY" not in source
