"""seqattn as an installed package: the wheel and an editable install work from another folder.

Both build from a copy of the sources (so stale ``build/`` leftovers cannot leak
into the wheel), install into a fresh virtual environment without downloading
anything (``--no-deps``; the running environment's site-packages supply torch
& co. through a ``.pth`` file) and then run the CLI and ``load_builtin`` for
every built-in from a working directory outside the repository.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import seqattn
from seqattn.data.builtins import BUILTIN_DATASETS

REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

CHECK_BUILTINS = """
import json, sys
import seqattn
from seqattn.data.builtins import BUILTIN_DATASETS, builtin_data_dir, load_builtin
shapes = {name: list(load_builtin(name).X.shape) for name in BUILTIN_DATASETS}
print(json.dumps({"package": seqattn.__file__, "data": str(builtin_data_dir()), "shapes": shapes}))
"""


def _copy_sources(dest: Path) -> Path:
    src = dest / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("seqattn", "data"):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, src / name)
    return src


def _fresh_venv(path: Path) -> Path:
    """A venv without pip whose dependencies come from this environment's site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_host_site_packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def _pip(venv_python: Path, *args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv_python), "install", "--quiet",
                    "--no-deps", "--no-build-isolation", *args], check=True, cwd=cwd, env=_env())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_NO_INDEX"] = "1"  # nothing may be downloaded
    return env


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _check_installed(venv: Path, elsewhere: Path) -> dict:
    bin_dir = venv / "bin"
    listing = _run([str(bin_dir / "seqattn"), "datasets"], elsewhere).stdout
    assert all(name in listing for name in BUILTIN_DATASETS)
    assert _run([str(bin_dir / "python"), "-m", "seqattn", "datasets"], elsewhere).stdout == listing
    _run([str(bin_dir / "seqattn"), "select", "--data", "pbmc68k_reduced", "-k", "3", "--method", "omp",
          "--out", "panel.json", "--quiet"], elsewhere)
    panel = json.loads((elsewhere / "panel.json").read_text())
    assert panel["dataset"] == "pbmc68k_reduced" and len(panel["selected_names"]) == 3
    info = json.loads(_run([str(bin_dir / "python"), "-c", CHECK_BUILTINS], elsewhere).stdout)
    assert set(info["shapes"]) == set(BUILTIN_DATASETS)
    assert info["shapes"]["pbmc68k_reduced"] == [700, 765] and info["shapes"]["mnist_5k"] == [5000, 784]
    return info


def test_wheel_installs_into_a_fresh_venv_and_runs_from_another_folder(tmp_path: Path) -> None:
    src = _copy_sources(tmp_path)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(src)], check=True, env=_env(), cwd=tmp_path)
    wheel = next(dist.glob("seqattn-*.whl"))
    assert wheel.name.startswith(f"seqattn-{seqattn.__version__}-")  # the version has one source
    names = zipfile.ZipFile(wheel).namelist()
    for data_file in ("pbmc68k_reduced.h5ad", "mnist_5k.npz", "README.md"):
        assert f"seqattn/builtin_data/{data_file}" in names
    assert "seqattn/sparsity/latency.py" in names and "seqattn/plots/selection.py" in names
    assert not any(n.startswith(("tests/", "pages/", "data/")) for n in names)
    venv = tmp_path / "venv"
    _pip(_fresh_venv(venv), str(wheel), cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    info = _check_installed(venv, elsewhere)
    assert info["package"].startswith(str(venv)), info  # the installed copy, not the repository
    assert info["data"].startswith(str(venv)) and info["data"].endswith("seqattn/builtin_data")


def test_editable_install_points_at_the_sources(tmp_path: Path) -> None:
    src = _copy_sources(tmp_path)
    venv = tmp_path / "venv"
    _pip(_fresh_venv(venv), "-e", str(src), cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    info = _check_installed(venv, elsewhere)
    assert Path(info["package"]).resolve() == (src / "seqattn" / "__init__.py").resolve()
    assert Path(info["data"]).resolve() == (src / "data").resolve()  # the one copy, not a duplicate
