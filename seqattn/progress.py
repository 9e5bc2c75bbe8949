"""Progress bars for selection runs: a notebook widget in Jupyter, text in a terminal.

Every selector reports through ``callback(step, total, message)``;
:func:`progress_bar` turns that into a ``tqdm.auto`` bar (an ipywidgets bar in
Jupyter, plain text elsewhere), so the CLI, :func:`seqattn.select_features`
and notebooks share one bar.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

ProgressCallback = Callable[[int, int, str], Any]


def chain_callbacks(*callbacks: ProgressCallback | None) -> ProgressCallback | None:
    """One callback calling each given one in turn; it asks to stop if any of them does."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]

    def chained(step: int, total: int, message: str) -> bool:
        return any([bool(c(step, total, message)) for c in active])  # list: every callback runs

    return chained


@contextmanager
def progress_bar(desc: str = "selection", *, enabled: bool = True, file: IO[str] | None = None,
                 notebook: bool | None = None) -> Iterator[ProgressCallback | None]:
    """A ``callback(step, total, message)`` that drives a percentage bar; closed on exit.

    ``notebook=None`` lets ``tqdm.auto`` choose (widget in Jupyter, text in a
    terminal); ``False`` forces text (the CLI writes to stderr). ``enabled=False``
    yields ``None`` so callers can pass it on unconditionally.
    """
    if not enabled:
        yield None
        return
    if notebook is False:
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    bar = tqdm(total=100, file=file, desc=desc, unit="%", mininterval=0.5)

    def update(step: int, total: int, message: str) -> None:
        if total:
            target = min(100, round(100 * step / total))
            if target > bar.n:
                bar.set_postfix_str(message[:60], refresh=False)
                bar.update(target - bar.n)  # update() honours mininterval; no flood of redraws

    try:
        yield update
    finally:
        bar.close()
