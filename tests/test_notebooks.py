"""Every notebook in notebooks/ runs top to bottom in a fresh kernel (its asserts are the checks),
within a time cap, and is stored without outputs."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from notebook_helpers import REPO_ROOT, execute_notebook

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
#: Per notebook, on the 2-core test machine under load (each takes well under a minute when idle).
TIME_CAP_S = 240


def test_there_are_four_notebooks_stored_without_outputs() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_greedy_selection.ipynb", "02_gene_panel.ipynb", "03_sparsity.ipynb",
                                           "04_structured_pruning.ipynb"]
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), f"{path.name} has outputs"
        source = "\n".join("".join(c["source"]) for c in code)
        # only the public API, so moving modules inside seqattn cannot break them
        imports = [line for line in source.splitlines() if line.startswith(("import seqattn", "from seqattn"))]
        assert all(line in ("import seqattn",) or line.startswith(("from seqattn import", "from seqattn.plots"))
                   for line in imports), imports
        assert "assert " in source, f"{path.name} checks nothing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQATTN_CACHE_DIR", str(tmp_path / "model-cache"))  # 04 trains its model there, not in ~
    start = time.perf_counter()
    executed = execute_notebook(path, cwd=tmp_path, timeout_s=TIME_CAP_S)
    seconds = time.perf_counter() - start
    assert seconds < TIME_CAP_S, f"{path.name} took {seconds:.0f} s"
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
