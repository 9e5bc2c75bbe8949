"""One place that decides where tensors live.

Every module asks :func:`resolve_device` once and passes the resulting
``torch.device`` down; nothing else in the package calls ``.cuda()``.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
    """Human-readable name, e.g. 'CUDA: NVIDIA H100' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


@contextmanager
def torch_threads(n_threads: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Temporarily use ``n_threads`` torch intra-op threads on the CPU (``None``: leave as is).

    Small networks gain nothing from intra-op threads and run several times
    slower with them on busy cores; large ones (20k-gene inputs) do gain.
    """
    previous = torch.get_num_threads()
    if n_threads is not None and torch.device(device).type == "cpu":
        torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def single_threaded():
    """One BLAS/OpenMP thread for the block: the many tiny scikit-learn refits run
    ~6× faster that way (20 logistic refits on digits: 1.41 s → 0.24 s, measured
    side by side on the 2-core dev box), and never slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
