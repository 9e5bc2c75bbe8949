"""Time a page's default run the way a user gets it: the app served by Streamlit, the button pressed in chromium.

Each setting gets its own server (``streamlit run app.py``) and each run a new browser session (the page's
defaults, nothing reused from an earlier run); the time is from the click until the result's download button
shows. ``--post-script-gc both`` alternates servers with Streamlit's default ``runner.postScriptGC = true``
(a full ``gc.collect(2)`` after every script run, the progress panels' 0.5 s fragment reruns included) and the
app's ``false`` (``.streamlit/config.toml``). The load average is printed before and after every run.

    PYTHONPATH=$PWD python benchmarks/bench_app_runs.py --page sparsity --repeats 3 --post-script-gc both
    PYTHONPATH=$PWD python benchmarks/bench_app_runs.py --page structured --repeats 2 --timeout 900
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

#: page -> (URL path, heading, run button, what shows when the run is done)
PAGES = {
    "sparsity": ("sparsity", "Sparsity: SA++ and sparse attention", "Train SA++ and baselines",
                 "Download accuracy table (CSV)"),
    "structured": ("structured_pruning", "Structured pruning: SA++ on a transformer", "Prune and time",
                   "Download run (JSON)"),
}


def time_runs(page_name: str, repeats: int, port: int, gc_setting: str, timeout_s: float) -> list[float]:
    """Seconds from click to result for ``repeats`` runs on one fresh server (``nan``: not done in time)."""
    from playwright.sync_api import sync_playwright

    path, heading, button, done = PAGES[page_name]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true", "--runner.postScriptGC", gc_setting],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for _ in range(60):
                try:
                    page.goto(f"http://localhost:{port}")
                    break
                except Exception:  # the server is still starting
                    time.sleep(1)
            for run in range(repeats):
                page.goto(f"http://localhost:{port}/{path}")
                page.get_by_role("heading", name=heading).wait_for(timeout=120_000)
                page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)
                load = os.getloadavg()[0]
                started = time.perf_counter()
                page.get_by_role("button", name=button).click()
                try:
                    page.get_by_role("button", name=done).wait_for(timeout=timeout_s * 1000)
                    seconds = time.perf_counter() - started
                except Exception:  # playwright's TimeoutError: report it, go on
                    seconds = float("nan")
                times.append(seconds)
                print(f"{page_name} postScriptGC={gc_setting} run {run}: {seconds:.1f} s, load {load:.2f} → "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", choices=list(PAGES), default="sparsity")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per server (the first in a fresh app is slowest)")
    parser.add_argument("--post-script-gc", choices=["false", "true", "both"], default="false")
    parser.add_argument("--rounds", type=int, default=1, help="servers per setting (alternated with --post-script-gc both)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one run")
    parser.add_argument("--port", type=int, default=8641)
    args = parser.parse_args()
    settings = ["true", "false"] if args.post_script_gc == "both" else [args.post_script_gc]
    results: dict[str, list[float]] = {s: [] for s in settings}
    for _ in range(args.rounds):
        for setting in settings:
            results[setting] += time_runs(args.page, args.repeats, args.port, setting, args.timeout)
    for setting, times in results.items():
        print(f"postScriptGC={setting}: median {statistics.median(times):.1f} s over {len(times)} runs "
              f"(first run in each fresh app included)")


if __name__ == "__main__":
    main()
