"""The app's Streamlit settings (``.streamlit/config.toml``) are ones Streamlit knows, and a script run
does not end with a full garbage collection.

Streamlit's default (``runner.postScriptGC``) runs ``gc.collect(2)`` after every script run, fragment
reruns included (``ScriptRunner._on_script_finished``; AppTest's runner skips it, so an AppTest cannot
show it). The progress panels rerun a fragment every 0.5 s, and in a process holding torch a full
collection held the GIL for most of that: py-spy found the script threads in ``_on_script_finished``
holding the GIL in 80% of samples while the page's background job waited for it. The Structured pruning
page's default run did not finish in 10 minutes at load 3–4 (66 s from a script); without the
collection it took 2–2.5 minutes at load 8 (benchmarks/README.md).
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit import config

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = ROOT / ".streamlit" / "config.toml"


def test_every_setting_is_one_streamlit_knows():
    settings = tomllib.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    for section, options in settings.items():
        for name in options:
            config.get_option(f"{section}.{name}")  # raises RuntimeError for an unknown option (a typo)


def test_script_runs_do_not_end_with_a_full_collection(monkeypatch):
    monkeypatch.chdir(ROOT)
    try:
        config.get_config_options(force_reparse=True)  # the app's config file, as `streamlit run app.py` reads it
        assert config.get_option("runner.postScriptGC") is False
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)
