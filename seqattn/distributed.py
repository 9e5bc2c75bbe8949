"""torch.distributed helpers: rank, world size, collectives, rank-0 output, launch.

SA trains data-parallel with :class:`torch.nn.parallel.DistributedDataParallel`
(gloo on CPU, NCCL on CUDA). Everything here is a thin layer over
``torch.distributed``; with no process group initialised every helper behaves
as a single process (rank 0 of 1), so library code calls them unconditionally.

Launch either with ``torchrun --nproc_per_node N -m seqattn select ...`` (the
CLI calls :func:`init_from_env`) or from Python with :func:`spawn`, which
starts ``N`` local processes and runs a function in each
(:func:`seqattn.selectors.sequential_attention.fit_dataset_distributed` does that
for an SA fit). This module knows nothing of SA: the trainer calls it.
"""
from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    """True when a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_rank_zero() -> bool:
    """Only rank 0 writes files and shows progress."""
    return rank() == 0


def backend_for(device: torch.device | str) -> str:
    """NCCL for CUDA tensors, gloo for everything else."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def local_device(device: torch.device) -> torch.device:
    """On CUDA each local rank gets its own GPU (``LOCAL_RANK``); other devices are shared."""
    if device.type == "cuda" and device.index is None and is_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank())) % torch.cuda.device_count())
    return device


def init_from_env(device: torch.device | str = "cpu") -> bool:
    """Join the process group described by torchrun's environment (``WORLD_SIZE`` > 1).

    Returns True when this call created the group (call :func:`shutdown` at the
    end), False for a single process or an already initialised group.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    dist.init_process_group(backend=backend_for(device))
    return True


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order; ``[value]`` for one process."""
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def check_same_on_all_ranks(value: Any, what: str) -> Any:
    """Gather ``value`` from every rank and fail loudly if they differ (e.g. a pick)."""
    values = all_gather_objects(value)
    if any(v != values[0] for v in values[1:]):
        raise RuntimeError(f"{what} differs between ranks: {values}. The ranks' models have diverged.")
    return values[0]


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank when ``flag`` is true on any rank (Stop pressed, time limit hit).

    ``device`` must be the ranks' training device (NCCL reduces CUDA tensors only).
    """
    if not is_distributed():
        return bool(flag)
    box = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(box, op=dist.ReduceOp.MAX)
    return bool(box.item() > 0)


class DistributedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are those of the *global* batch across ranks.

    ``nn.SyncBatchNorm`` does this on CUDA only; this one uses the differentiable
    ``torch.distributed.nn.functional.all_reduce`` and so works with gloo too.
    Two-pass (mean, then centred squares) like ``BatchNorm1d``, so one process
    with the whole batch and N processes with 1/N of it agree to rounding.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        with warnings.catch_warnings():  # torch 2.13 points to a private module; this one is the public API
            warnings.simplefilter("ignore", FutureWarning)
            return self._global_batch_norm(x)

    def _global_batch_norm(self, x: torch.Tensor) -> torch.Tensor:
        from torch.distributed.nn.functional import all_reduce

        count = torch.tensor([float(x.shape[0])], device=x.device, dtype=x.dtype)
        stats = all_reduce(torch.cat([x.sum(dim=0), count]))
        n = stats[-1]
        mean = stats[:-1] / n
        centred = x - mean
        var = all_reduce(centred.pow(2).sum(dim=0)) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1).clamp(min=1))
                self.running_mean.mul_(1 - momentum).add_(momentum * mean)
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        out = centred / torch.sqrt(var + self.eps)
        if self.affine:
            out = out * self.weight + self.bias
        return out


def sync_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d`` in ``module`` by :class:`DistributedBatchNorm1d` (same state)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm1d:
            replacement = DistributedBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                                 child.track_running_stats)
            replacement.load_state_dict(child.state_dict())
            replacement.to(next(child.parameters(), child.running_mean).device)
            setattr(module, name, replacement)
        else:
            sync_batch_norm(child)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawned(local_rank: int, fn: Callable[..., Any], n_procs: int, port: int, backend: str,
             args: tuple, results: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank),
                      LOCAL_RANK=str(local_rank), WORLD_SIZE=str(n_procs))
    dist.init_process_group(backend=backend, rank=local_rank, world_size=n_procs)
    try:
        results[local_rank] = fn(*args)
    finally:
        dist.destroy_process_group()


def spawn(fn: Callable[..., Any], n_procs: int, *args: Any, backend: str = "gloo") -> list[Any]:
    """Run ``fn(*args)`` in ``n_procs`` fresh local processes joined in one process group.

    The Python counterpart of ``torchrun --nproc_per_node N``: returns each
    rank's (picklable) return value, in rank order. ``fn`` must be importable
    (a module-level function), as with ``torch.multiprocessing.spawn``.
    """
    import torch.multiprocessing as mp

    if n_procs < 1:
        raise ValueError(f"n_procs must be ≥ 1, got {n_procs}.")
    manager = mp.get_context("spawn").Manager()
    try:
        results = manager.dict()
        mp.spawn(_spawned, args=(fn, n_procs, _free_port(), backend, args, results), nprocs=n_procs, join=True)
        return [results[r] for r in range(n_procs)]
    finally:
        manager.shutdown()
