"""Background jobs leave process-wide thread settings alone, so one session's run never changes
what another session reads or runs with (issue: after the first SA run every new session
reported "CPU (1 thread)").

Torch keeps two things: a process-wide default that a thread copies at its first
parallel op, and the calling thread's OpenMP count. ``torch.set_num_threads``
writes both, so a job that called it changed every *fresh* thread (each Streamlit
script run is one), while already-running threads kept their own count.
"""
from __future__ import annotations

import os
import threading
import time

import pytest
import torch
from threadpoolctl import threadpool_info

import seqattn.device as device_module
from app_support.jobs import BackgroundJob
from seqattn import make_planted, run_method  # top-level names: stable while modules move
from seqattn.device import describe_device, single_threaded, torch_threads


def read_in_fresh_thread(fn):
    out: dict[str, object] = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn()))
    thread.start()
    thread.join()
    return out["value"]


@pytest.fixture
def two_threads():
    """A process default of 2 (what the 2-core box has), so a job's 1 would show."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def test_sa_job_never_changes_the_thread_count_other_threads_read(two_threads):
    data = make_planted(n_samples=200, n_features=8, n_informative=2, random_state=0)
    # A small network, so SA runs its own thread with 1 torch thread (SMALL_NETWORK_SIZE).
    jobs = [BackgroundJob(run_method, data, "sa", 2, device="cpu", epochs=40, random_state=seed) for seed in (0, 1)]
    main_seen, fresh_seen = set(), set()
    while not all(job.done for job in jobs):  # two overlapping jobs, as two sessions would run them
        main_seen.add(torch.get_num_threads())
        fresh_seen.add(read_in_fresh_thread(torch.get_num_threads))
        time.sleep(0.005)
    for job in jobs:
        assert job.error is None, job.error
    assert main_seen == {two_threads}
    assert fresh_seen == {two_threads}
    assert read_in_fresh_thread(torch.get_num_threads) == two_threads  # and after both finished
    assert read_in_fresh_thread(lambda: describe_device(torch.device("cpu"))) == "CPU (2 threads)"
    # The jobs themselves did run single-threaded (the trace records the job thread's count).
    assert {job.result.device for job in jobs} == {"CPU (1 thread)"}


def test_torch_threads_limits_only_the_calling_thread(two_threads):
    inside, entered, leave = {}, threading.Event(), threading.Event()

    def job() -> None:
        with torch_threads(1):
            inside["count"] = torch.get_num_threads()
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=job)
    thread.start()
    entered.wait(10)
    try:
        assert inside["count"] == 1
        assert torch.get_num_threads() == two_threads
        assert read_in_fresh_thread(torch.get_num_threads) == two_threads
    finally:
        leave.set()
        thread.join()


def _blas_threads() -> set[int]:
    return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}


def test_with_a_process_policy_single_threaded_leaves_blas_alone(monkeypatch):
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    from threadpoolctl import threadpool_limits

    original = threadpool_limits(limits=2, user_api="blas")  # a count a job's limit of 1 would change
    monkeypatch.setattr(device_module, "_PROCESS_POLICY", None)
    try:
        policy = device_module.fix_process_threads(blas_threads=2)
        assert policy["blas_threads"] == 2 and device_module.fix_process_threads(blas_threads=5) == policy
        entered, leave = threading.Event(), threading.Event()

        def job() -> None:
            with single_threaded():
                entered.set()
                leave.wait(10)

        thread = threading.Thread(target=job)
        thread.start()
        entered.wait(10)
        try:
            assert _blas_threads() == {2}  # process-wide: a job must not have changed it
        finally:
            leave.set()
            thread.join()
    finally:
        original.restore_original_limits()


def test_process_policy_reaches_blas_libraries_loaded_later():
    """The app fixes the policy before scikit-learn (and SciPy's own OpenBLAS) are imported;
    a BLAS left at the core count made each tiny refit ~7× slower on the loaded 2-core box."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import seqattn.device as d; d.fix_process_threads(); import sklearn.linear_model, scipy.sparse.linalg; "
        "from threadpoolctl import threadpool_info; "
        "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}, check=True)
    assert out.stdout.strip() == "[1]", out.stdout + out.stderr
