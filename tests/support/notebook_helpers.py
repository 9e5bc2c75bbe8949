"""Execute a notebook in a fresh Jupyter kernel (nbclient) and read its outputs back."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[2]


def execute_notebook(notebook: str | Path, *, cwd: Path, timeout_s: int = 240) -> nbformat.NotebookNode:
    """Run every cell (a failing cell raises ``CellExecutionError`` with its traceback).

    ``notebook`` is a path or the notebook's JSON text. The kernel is the
    running Python's own (``python3``); the repository is put on its
    ``PYTHONPATH`` so an uninstalled checkout works too, and torch's threads are
    capped at 2 like the machines the suite is sized for.
    """
    text = Path(notebook).read_text(encoding="utf-8") if isinstance(notebook, Path) else notebook
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    env_before = {k: os.environ.get(k) for k in ("PYTHONPATH", "OMP_NUM_THREADS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env_before["PYTHONPATH"]]))
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    """All stream and text/plain outputs of the executed notebook, joined."""
    parts: list[str] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output:
                parts.append(str(output["data"].get("text/plain", "")))
    return "\n".join(parts)
