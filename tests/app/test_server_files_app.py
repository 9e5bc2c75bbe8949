"""Data page: 'File on the server' appears only when an allowed folder is configured; large h5ad opens backed."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from seqattn.data.h5ad_backed import write_planted_counts_h5ad
from seqattn.server_files import SERVER_DATA_ENV

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_server_file_source_is_off_by_default(monkeypatch):
    monkeypatch.delenv(SERVER_DATA_ENV, raising=False)
    at = _data_page()
    assert "File on the server" not in at.radio(key="data_source").options


def test_server_file_opens_backed_and_becomes_the_data_set(monkeypatch, tmp_path):
    write_planted_counts_h5ad(tmp_path / "atlas.h5ad", 300, 80, n_types=3, markers_per_type=2, random_state=0)
    monkeypatch.setenv(SERVER_DATA_ENV, str(tmp_path))
    monkeypatch.setattr("seqattn.server_files.BACKED_FROM_BYTES", 1)  # treat the small file as large
    at = _data_page()
    at.radio(key="data_source").set_value("File on the server").run()
    at.selectbox(key="server_file").select("atlas.h5ad").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    dataset = at.session_state["dataset"]
    assert dataset.backed and dataset.n_samples == 300
    assert at.session_state["dataset_key"].startswith("server:atlas.h5ad")
    assert {m.label: m.value for m in at.metric}.get("backed (on disk)") == "True"
