"""One place that decides where tensors live.

Every module asks :func:`resolve_device` once and passes the resulting
``torch.device`` down; nothing else in the package calls ``.cuda()``.
"""
from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """Names of the devices this machine can run on, best first."""
    names = []
    if torch.cuda.is_available():
        names.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:1" | "mps"`` into a ``torch.device``.

    ``auto`` prefers CUDA, then Apple's MPS, then the CPU. Asking for a device
    the machine does not have raises ``ValueError`` naming what *is* available,
    rather than failing later inside a kernel.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device(available_devices()[0])
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"Unknown device {device!r}; choose one of {', '.join(DEVICE_CHOICES)}.")
    if kind != "cpu" and kind not in available_devices():
        raise ValueError(
            f"Device {device!r} is not available on this machine; "
            f"available: {', '.join(available_devices())}."
        )
    if kind == "cuda" and ":" in name:
        index = int(name.split(":")[1])
        if index >= torch.cuda.device_count():
            raise ValueError(f"{device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist.")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so wall-clock timings mean something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def describe_device(device: torch.device) -> str:
    """Human-readable name, e.g. 'CUDA: NVIDIA H100' or 'CPU (2 threads)'.

    The CPU thread count is the calling thread's: the process default
    everywhere, except inside a :func:`torch_threads` block of that same thread
    (e.g. a selector's run), which no other thread can see.
    """
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


@contextmanager
def torch_threads(n_threads: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Use ``n_threads`` torch intra-op CPU threads in the calling thread only (``None``: leave as is).

    Small networks gain nothing from intra-op threads and run several times
    slower with them on busy cores; large ones (20k-gene inputs) do gain.

    Why not ``torch.set_num_threads``: it also writes a process-wide default
    that every thread copies when it first runs a torch op. In the app, a
    session's job would change what each new session's script run (a fresh
    thread) reads and runs with, and two overlapping jobs' save/restore could
    leave it at 1 for good. Torch's CPU kernels run OpenMP teams sized by the
    calling thread's OpenMP setting (``omp_set_num_threads``, per thread by the
    OpenMP spec), so that is all this changes, through threadpoolctl. Where
    torch has no OpenMP runtime, the block runs with the default count.

    Torch's matrix products and some element-wise kernels (sqrt) go to the MKL
    linked into torch, which keeps its own thread count (threadpoolctl cannot
    see it): :func:`_mkl_threads` limits it for the calling thread too. Without
    that, on 2 busy cores every small product waited for a second MKL thread —
    SA's batched step on 150 inputs took 78 ms of CPU instead of 16.
    """
    if n_threads is None or torch.device(device).type != "cpu":
        yield
        return
    from threadpoolctl import threadpool_limits

    # Torch sets a thread's OpenMP count from the process default at that thread's first
    # parallel op; trigger that now so it cannot undo the limit below.
    torch.get_num_threads()
    with threadpool_limits(limits=int(n_threads), user_api="openmp"), _mkl_threads(int(n_threads)):
        yield


@contextmanager
def _mkl_threads(n_threads: int) -> Iterator[None]:
    """MKL's thread count for the calling thread only (``mkl_set_num_threads_local``), where torch links MKL."""
    set_local = _mkl_set_local()
    if set_local is None:
        yield
        return
    previous = set_local(n_threads)  # 0: the thread followed the process-wide count
    try:
        yield
    finally:
        set_local(previous)


@functools.lru_cache(maxsize=1)
def _mkl_set_local() -> Any:
    """torch's exported ``mkl_set_num_threads_local`` (C name ``MKL_Set_Num_Threads_Local``), or None (no MKL)."""
    import ctypes
    from pathlib import Path

    for library in sorted((Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*")):
        try:
            function = ctypes.CDLL(str(library)).MKL_Set_Num_Threads_Local  # the C API (lower case: Fortran)
        except (OSError, AttributeError):
            continue
        function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
        return function
    return None


#: The process-wide thread policy once :func:`fix_process_threads` ran (multi-session
#: processes such as the app), else ``None``.
_PROCESS_POLICY: dict[str, int] | None = None
_POLICY_LOCK = threading.Lock()


def fix_process_threads(blas_threads: int = 1) -> dict[str, int]:
    """Fix the process-wide thread settings once, at start-up of a process that serves
    several sessions (the Streamlit app); later calls change nothing and return the policy.

    BLAS libraries (OpenBLAS) keep one process-wide thread count, so a job must
    not set it (:func:`single_threaded` then leaves BLAS alone): it is fixed here
    to ``blas_threads`` (1: the many small refits run fastest that way, and
    concurrent sessions do not oversubscribe the cores). Torch's intra-op
    default is left as torch chose it (the core count) and is reported as
    ``torch_threads``; jobs only change their own thread's (:func:`torch_threads`).
    """
    global _PROCESS_POLICY
    with _POLICY_LOCK:
        if _PROCESS_POLICY is None:
            import scipy.linalg  # noqa: F401  (loads SciPy's own OpenBLAS, so the limit below reaches it)
            from threadpoolctl import threadpool_limits

            # A BLAS library loaded later reads these when it starts; the loaded ones are limited now.
            for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[name] = str(int(blas_threads))
            threadpool_limits(limits=int(blas_threads), user_api="blas")  # kept: not used as a context
            _PROCESS_POLICY = {"torch_threads": torch.get_num_threads(), "blas_threads": int(blas_threads)}
        return dict(_PROCESS_POLICY)


def process_thread_policy() -> dict[str, int] | None:
    """The policy :func:`fix_process_threads` set, or ``None`` when the process has none."""
    return None if _PROCESS_POLICY is None else dict(_PROCESS_POLICY)


def single_threaded():
    """One BLAS/OpenMP thread for the block: the many tiny scikit-learn refits run
    ~6× faster that way (20 logistic refits on digits: 1.41 s → 0.24 s, measured
    side by side on the 2-core dev box), and never slower.

    OpenMP is limited for the calling thread only. BLAS thread counts are
    process-wide, so once :func:`fix_process_threads` fixed them (the app) they
    are left alone here; without a policy (scripts, the CLI) BLAS is limited for
    the block as well.
    """
    from threadpoolctl import threadpool_limits

    if _PROCESS_POLICY is not None:
        return threadpool_limits(limits=1, user_api="openmp")
    return threadpool_limits(limits=1)
