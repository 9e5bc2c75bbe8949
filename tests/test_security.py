"""Security: nothing a user provides is unpickled or executed, and uploads never read or write other files.

1. A static scan (AST, plus a text check for ``allow_pickle=True``) of the
   package, the pages and ``app.py`` for calls that can run code hidden in
   data: ``pickle.load(s)``, ``eval``, ``exec``, ``torch.load`` without
   ``weights_only=True``, ``np.load(..., allow_pickle=True)``, ``yaml.load``
   and friends. The scanner is itself tested on a snippet that holds each one.
2. Pages write no files (static scan for write calls); the package writes
   only where a caller names the path or in the run store
   (``seqattn/run_store.py``: random ids under its configured folder); an
   upload driven through the Data page opens nothing for writing outside the
   temp directory and the run store's folder (every ``open``/``os.open`` in
   write mode is recorded while it runs), and never writes the uploaded bytes.
3. An h5ad that would read other files (external raw storage, virtual
   datasets, external links) or crash the HDF5 library is refused through the
   CLI (a separate process: exit 2, not a segfault) and from the server folder;
   an h5ad upload's private temporary copy is gone afterwards.
"""
from __future__ import annotations

import ast
import builtins
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.bad_inputs_corpus import SECRET_LINES, external_link_h5ad, external_storage_h5ad, virtual_x_h5ad
from seqattn.data import DataError

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
    allowed = {"seqattn/safe_text.py", "seqattn/data/h5ad.py", "seqattn/cli.py",  # write_atomically, save_h5ad, --out
               "seqattn/data/h5ad_backed.py",  # write_planted_counts_h5ad(path): the caller names the file
               "seqattn/data/h5ad_safety.py",  # local_path: an h5ad upload's private temporary copy, removed after
               "seqattn/run_store.py",  # the run store: its own folder, random file names
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


def test_uploads_are_parsed_in_memory(tmp_path: Path, recorded_writes: list[str], monkeypatch):
    """Uploads are parsed from memory; what is written is the run store's own copy of the parsed data set
    (arrays and JSON under random names), never the uploaded file."""
    from streamlit.testing.v1 import AppTest

    from app_support.runs import run_store

    store_dir = tmp_path / "store"
    monkeypatch.setenv("SEQATTN_RUN_DIR", str(store_dir))
    run_store.clear()

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
    run_store.clear()
    temp = os.path.realpath(tempfile.gettempdir())
    outside = [p for p in recorded_writes if not os.path.realpath(p).startswith(temp)]
    assert not outside, f"files written outside {temp} during uploads: {outside}"
    copies = [p for p in recorded_writes if "seqattn-h5ad-" in p]
    assert copies and not any(os.path.exists(p) or os.path.exists(os.path.dirname(p)) for p in copies)
    kept = sorted(store_dir.rglob("*"))
    assert kept and all(p.suffix in (".json", ".npz") for p in kept if p.is_file())
    for path in (p for p in kept if p.is_file()):
        content = path.read_bytes()
        assert h5ad not in content and table.to_parquet() not in content


def test_write_recorder_records(tmp_path: Path, recorded_writes: list[str]):
    with open(tmp_path / "a.txt", "w") as fh:
        fh.write("x")
    Path(tmp_path / "b.txt").write_text("y")
    (tmp_path / "a.txt").read_text()
    assert recorded_writes == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]


# ------------------------------------------ hostile h5ad: nothing outside the file
def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "seqattn", "select", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.parametrize(("name", "make", "message"), [
    ("crash.h5ad", lambda t: virtual_x_h5ad(t, None, "crash.h5ad"),
     "error: 'crash.h5ad': dataset 'X' is an HDF5 virtual dataset (its values would come from 'X' in this same file)"),
    ("passwd.h5ad", lambda t: external_storage_h5ad(t, name="passwd.h5ad"),
     "error: 'passwd.h5ad': dataset 'obs/cell_type/categories' is stored outside the file (external raw storage in"),
], ids=["self-virtual-X-segfaulted", "external-storage-showed-the-file"])
def test_cli_refuses_hostile_h5ad_with_exit_2(name, make, message, tmp_path: Path):
    """Before: the self-mapped virtual X killed the process (exit 139), external storage printed the file."""
    make(tmp_path)
    done = _run_cli("--data", str(tmp_path / name), "--target", "cell_type", "-k", "2", "--method", "anova",
                    "--out", str(tmp_path / "o.json"), "--quiet")
    assert done.returncode == 2, (done.returncode, done.stderr[-1500:])
    assert message in done.stderr
    assert not any(line.decode().strip() in done.stdout + done.stderr for line in SECRET_LINES)
    assert not (tmp_path / "o.json").exists()


def test_server_folder_files_cannot_reach_outside_the_folder(tmp_path: Path, monkeypatch):
    """A file placed inside SEQATTN_SERVER_DATA_DIR whose data lives outside it is refused, in memory and backed."""
    from seqattn.data.tables import list_columns
    from seqattn import server_files
    from seqattn.server_files import SERVER_DATA_ENV, allowed_folder, load_server_file, resolve_server_path

    outside, shared = tmp_path / "outside", tmp_path / "shared"
    outside.mkdir()
    shared.mkdir()
    external_storage_h5ad(shared, secret=outside / "secret.txt")
    virtual_x_h5ad(shared, outside / "source.h5")
    external_link_h5ad(shared, outside / "elsewhere.h5")
    monkeypatch.setenv(SERVER_DATA_ENV, str(shared))
    folder = allowed_folder()
    expected = {"external_storage.h5ad": r"stored outside the file \(external raw storage in '.*outside/secret.txt'\)",
                "virtual_x.h5ad": r"virtual dataset \(its values would come from 'data' in the file '.*outside/source",
                "external_link.h5ad": r"'X' is an external link to 'data' in the file '.*outside/elsewhere.h5'"}
    for name, message in expected.items():
        with pytest.raises(DataError, match=message):
            list_columns(str(resolve_server_path(name, folder)))  # the page's target picker
        for backed_from in (1 << 60, 1):  # in memory, then backed (as large files open)
            monkeypatch.setattr(server_files, "BACKED_FROM_BYTES", backed_from)
            with pytest.raises(DataError, match=message) as refused:
                load_server_file(name, folder, "cell_type")
            assert "root:x" not in str(refused.value)


def test_h5ad_upload_copy_is_private_and_removed(tmp_path: Path, monkeypatch):
    """h5py reads an in-memory upload from a temporary copy: 0600 in a fresh 0700 folder, gone afterwards
    (also when the file is refused)."""
    import stat

    from seqattn.data import h5ad
    from seqattn.data.tables import load_table

    seen: list[tuple[Path, int, int]] = []
    real = h5ad.refuse_unsafe_storage

    def spy(f, name):
        path = Path(f.filename)
        seen.append((path, stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode)))
        return real(f, name)

    monkeypatch.setattr(h5ad, "refuse_unsafe_storage", spy)
    assert load_table(_h5ad_bytes(tmp_path), "cell_type", file_name="u.h5ad").n_samples == 30
    with pytest.raises(DataError, match="virtual dataset"):
        load_table(virtual_x_h5ad(tmp_path, tmp_path / "src.h5"), "cell_type", file_name="v.h5ad")
    assert len(seen) == 2
    for path, file_mode, folder_mode in seen:
        assert (file_mode, folder_mode) == (0o600, 0o700)
        assert path.parent.name.startswith("seqattn-h5ad-") and not path.parent.exists()
