"""Security: nothing a user provides is unpickled or executed, and uploads never touch the disk.

1. A static scan (AST, plus a text check for ``allow_pickle=True``) of the
   package, the pages and ``app.py`` for calls that can run code hidden in
   data: ``pickle.load(s)``, ``eval``, ``exec``, ``torch.load`` without
   ``weights_only=True``, ``np.load(..., allow_pickle=True)``, ``yaml.load``
   and friends. The scanner is itself tested on a snippet that holds each one.
2. Pages write no files (static scan for write calls), and an upload driven
   through the Data page opens nothing for writing outside the temp directory
   (every ``open``/``os.open`` in write mode is recorded while it runs).
"""
from __future__ import annotations

import ast
import builtins
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.joinpath("seqattn").rglob("*.py"), *ROOT.joinpath("pages").rglob("*.py"),
                  *ROOT.joinpath("app_support").rglob("*.py"), ROOT / "app.py"])

# module.function calls that deserialise executable objects
DANGEROUS_ATTRIBUTE_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("cPickle", "load"), ("cPickle", "loads"),
    ("dill", "load"), ("dill", "loads"), ("joblib", "load"), ("marshal", "load"), ("marshal", "loads"),
    ("shelve", "open"), ("pd", "read_pickle"), ("pandas", "read_pickle"), ("yaml", "load"),
    ("yaml", "unsafe_load"), ("yaml", "full_load"), ("cloudpickle", "load"), ("cloudpickle", "loads"),
}
DANGEROUS_NAMES = {"eval", "exec", "__import__", "compile"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword_true(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)


def scan(source: str, filename: str = "<snippet>") -> list[str]:
    """``file:line: what`` for every dangerous call in ``source``."""
    offenders = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "dill", "marshal", "cloudpickle"):
            names = {a.name for a in node.names} & {"load", "loads", "Unpickler"}
            if names:
                offenders.append(f"{filename}:{node.lineno}: from {node.module} import {', '.join(sorted(names))}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        parts = tuple(name.rsplit(".", 1)) if "." in name else ("", name)
        where = f"{filename}:{node.lineno}"
        if name in DANGEROUS_NAMES:
            offenders.append(f"{where}: {name}()")
        elif (parts[0].split(".")[-1], parts[1]) in DANGEROUS_ATTRIBUTE_CALLS:
            offenders.append(f"{where}: {name}()")
        elif name == "torch.load" or name.endswith(".torch.load"):
            if not _keyword_true(node, "weights_only"):
                offenders.append(f"{where}: {name}() without weights_only=True")
        elif parts[1] == "load" and parts[0].split(".")[-1] in ("np", "numpy") and _keyword_true(node, "allow_pickle"):
            offenders.append(f"{where}: {name}(allow_pickle=True)")
    return offenders


def test_scanner_finds_each_dangerous_call():
    snippet = "\n".join([
        "import pickle, torch, yaml, numpy as np, pandas as pd",
        "pickle.loads(b'')", "pickle.load(f)", "eval('1')", "exec('x=1')", "torch.load('m.pt')",
        "torch.load('m.pt', weights_only=False)", "np.load('a.npy', allow_pickle=True)", "yaml.load(s)",
        "pd.read_pickle('x')", "__import__('os')", "from pickle import loads",
        # harmless look-alikes that must NOT be flagged:
        "torch.load('m.pt', weights_only=True)", "np.load('a.npy')", "yaml.safe_load(s)", "json.loads(s)",
        "model.eval()", "ast.literal_eval('1')",
    ])
    found = scan(snippet)
    lines = sorted(int(item.split(":")[1]) for item in found)
    assert lines == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], found


def test_no_dangerous_calls_in_package_pages_or_app():
    offenders = [hit for path in SOURCES for hit in scan(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert not offenders, "calls that can execute data:\n" + "\n".join(offenders)


def test_no_allow_pickle_true_anywhere():
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in SOURCES
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if "allow_pickle=True" in line.replace(" ", "")]
    assert not hits, hits


# ------------------------------------------------------------- file writes
WRITE_METHODS = {"write_bytes", "write_text", "to_parquet", "write_h5ad", "to_pickle", "tofile", "mkstemp",
                 "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory"}
WRITE_FUNCTIONS = {"np.save", "np.savez", "numpy.save", "torch.save", "shutil.copy", "shutil.copyfile",
                   "shutil.copytree", "shutil.move"}


def _path_like(call: ast.Call) -> bool:
    """First argument looks like a file path (not an in-memory buffer)."""
    arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg in ("path", "path_or_buf", "file")), None)
    if arg is None:
        return False
    if isinstance(arg, (ast.Constant, ast.JoinedStr)):
        return True
    if isinstance(arg, ast.Call) and _dotted(arg.func).endswith("Path"):
        return True
    label = _dotted(arg).lower()
    return any(word in label for word in ("path", "file", "out", "dest"))


def _write_calls(source: str, filename: str) -> list[str]:
    hits = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        if last == "open":
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax+"):
                hits.append(f"{filename}:{node.lineno}: {name}(mode={mode.value!r})")
        elif (last in WRITE_METHODS or name in WRITE_FUNCTIONS) and not name.startswith("st."):
            hits.append(f"{filename}:{node.lineno}: {name}()")
        elif last in ("to_csv", "to_json", "to_html", "write_html", "write_image") and _path_like(node):
            hits.append(f"{filename}:{node.lineno}: {name}(<path>)")
    return hits


def test_write_scanner_sees_writes():
    snippet = ("open(p, 'wb')\nPath(p).write_bytes(b)\nframe.to_csv('x.csv')\ntrace.to_csv()\nopen(p)\n"
               "tempfile.mkstemp()\nst.download_button('a', trace.to_csv())\n")
    assert [h.split(":")[1] for h in _write_calls(snippet, "s")] == ["1", "2", "3", "6"]


def test_pages_and_app_write_no_files():
    """Uploads stay in memory: pages hand bytes to seqattn as buffers, never as files."""
    pages = sorted([*ROOT.joinpath("pages").glob("*.py"), *ROOT.joinpath("app_support").glob("*.py"), ROOT / "app.py"])
    hits = [h for p in pages for h in _write_calls(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert not hits, "pages must not write files:\n" + "\n".join(hits)


def test_package_writes_only_where_a_caller_asks():
    """seqattn writes files only in functions that take an explicit output path (and the one model cache)."""
    allowed = {"seqattn/trace.py", "seqattn/data/h5ad.py", "seqattn/cli.py",  # write_atomically, save_h5ad, --out
               "seqattn/data/h5ad_backed.py",  # write_planted_counts_h5ad(path): the caller names the file
               # load_or_train(cache_dir=None): the trained transformer's state_dict + meta.json under
               # ~/.cache/seqattn ($SEQATTN_CACHE_DIR) or the caller's folder; tensors only, read weights_only
               "seqattn/sparsity/transformer.py"}
    hits = [h for p in ROOT.joinpath("seqattn").rglob("*.py")
            for h in _write_calls(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert all(h.split(":")[0] in allowed for h in hits), hits


@pytest.fixture
def recorded_writes(monkeypatch):
    """Every path opened for writing (builtins.open / io.open / os.open) while the test runs."""
    writes: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+"):
            writes.append(os.fsdecode(file))
        return real_open(file, mode, *args, **kwargs)

    def spy_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            writes.append(os.fsdecode(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return writes


def _h5ad_bytes(tmp_path: Path) -> bytes:
    import anndata

    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"cell_type": pd.Categorical(["B", "T"] * 15)}, index=[f"c{i}" for i in range(30)])
    adata = anndata.AnnData(X=rng.poisson(2, size=(30, 6)).astype(np.float32) + 1, obs=obs,
                            var=pd.DataFrame(index=[f"g{j}" for j in range(6)]))
    adata.write_h5ad(tmp_path / "u.h5ad")
    return (tmp_path / "u.h5ad").read_bytes()


def test_uploads_are_parsed_in_memory(tmp_path: Path, recorded_writes: list[str]):
    from streamlit.testing.v1 import AppTest

    h5ad = _h5ad_bytes(tmp_path)
    table = pd.DataFrame(np.random.default_rng(1).normal(size=(30, 3)), columns=["a", "b", "c"]).assign(label=[0, 1] * 15)
    recorded_writes.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Upload").run()
    for name, data in (("u.csv", table.to_csv(index=False).encode()), ("u.parquet", table.to_parquet()),
                       ("u.h5ad", h5ad)):
        at.get("file_uploader")[0].upload(name, data).run()
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        assert f":{name}:" in at.session_state["dataset_key"]  # the upload became the current data set
    temp = os.path.realpath(tempfile.gettempdir())
    outside = [p for p in recorded_writes if not os.path.realpath(p).startswith(temp)]
    assert not outside, f"files written outside {temp} during uploads: {outside}"


def test_write_recorder_records(tmp_path: Path, recorded_writes: list[str]):
    with open(tmp_path / "a.txt", "w") as fh:
        fh.write("x")
    Path(tmp_path / "b.txt").write_text("y")
    (tmp_path / "a.txt").read_text()
    assert recorded_writes == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
