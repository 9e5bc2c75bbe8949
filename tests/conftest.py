"""Shared test fixtures: a live Streamlit server and a Playwright page in Debian chromium.

Fixtures
--------
``streamlit_server``  (session)  base URL (``http://127.0.0.1:<port>``) of
    ``streamlit run app.py`` started once per test session; the process tree
    is killed at the end.
``fresh_streamlit_server`` (function) the same, but a server of its own that no
    session has visited yet.
``browser``           (session)  a Playwright ``Browser`` on ``/usr/bin/chromium``.
``page``              (function) a fresh ``Page`` (own context, downloads
    allowed); on failure a full-page screenshot lands in ``test-artifacts/``.
``artifacts_dir``     (session)  ``test-artifacts/`` (created), for screenshots
    a test wants to keep on success too.

Browser tests skip with a reason when chromium or Playwright is missing on a
developer machine, but *fail* in CI (``CI`` set) so a broken setup is noticed.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT_S = 90.0

# Tests keep their runs in a throwaway run store (seqattn.run_store), never in the user's cache folder;
# servers started below inherit it. Removed when the test session ends.
_RUN_DIR = tempfile.mkdtemp(prefix="seqattn-test-runs-")
os.environ["SEQATTN_RUN_DIR"] = _RUN_DIR
atexit.register(shutil.rmtree, _RUN_DIR, True)


def _python() -> str:
    """The project venv's interpreter when present, else the one running pytest."""
    venv_python = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _skip_or_fail(reason: str) -> None:
    """Skip on a developer machine; in CI a missing browser is a broken setup, so fail."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"streamlit exited with code {process.returncode} before it was healthy; "
                f"log:\n{log_path.read_text(errors='replace')[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"streamlit was not healthy after {SERVER_START_TIMEOUT_S:.0f} s; "
        f"log:\n{log_path.read_text(errors='replace')[-4000:]}"
    )


def _kill_tree(process: subprocess.Popen) -> None:
    """Stop streamlit and anything it spawned (it runs in its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@contextmanager
def run_streamlit(log_path: Path, env: dict[str, str] | None = None, port: int | None = None) -> Iterator[str]:
    """``streamlit run app.py`` on a free port (or ``port``) until the block ends; yields its base URL.
    ``env`` adds environment variables (e.g. the run store's folder)."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [_python(), "-m", "streamlit", "run", "app.py",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--server.fileWatcherType", "none"],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group, so the whole tree can be killed
        )
    try:
        _wait_healthy(url, process, log_path)
        yield url
    finally:
        _kill_tree(process)


@pytest.fixture(scope="session")
def streamlit_server(artifacts_dir: Path) -> Iterator[str]:
    """Start ``streamlit run app.py`` on a free port; yield its base URL."""
    with run_streamlit(artifacts_dir / "streamlit-server.log") as url:
        yield url


@pytest.fixture
def fresh_streamlit_server(artifacts_dir: Path) -> Iterator[str]:
    """A server of its own that no session has visited yet (for what only a first load shows)."""
    with run_streamlit(artifacts_dir / "streamlit-fresh-server.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A Playwright chromium browser (Debian's binary, not a Playwright download)."""
    if not CHROMIUM.exists():
        _skip_or_fail(f"{CHROMIUM} is missing; install Debian's chromium (make chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed in this environment")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the item so ``page`` can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser: object, artifacts_dir: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh page (own context, downloads on); screenshot to test-artifacts/ on failure."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in request.node.name)
            try:
                page.screenshot(path=str(artifacts_dir / f"FAILED-{safe_name}.png"), full_page=True)
            except Exception as exc:  # a dead page must not hide the real failure
                print(f"could not save failure screenshot: {exc}")
        context.close()
