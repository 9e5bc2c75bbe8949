"""Progress for selection runs: one honest bar position, shown as a notebook widget, text or a page's bar.

Every selector reports through ``callback(step, total, message)``. ``total`` is
exact for most methods; SA's automatic budget cannot know it in advance, so it
passes an :class:`EstimatedTotal` (an ``int``, so old callbacks keep working)
that grows or shrinks as phases converge. :class:`ProgressTracker` turns those
reports into a bar position that never moves backwards and a label that says
when the total is an estimate; :func:`progress_bar` (``tqdm.auto``: an
ipywidgets bar in Jupyter, text elsewhere), :class:`seqattn.LiveSelectionView`,
the comparison's stages and the app's background jobs all read it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

ProgressCallback = Callable[[int, int, str], Any]

#: An estimated total holds the bar below this until the run reports its exact end.
ESTIMATE_CEILING = 0.99


class EstimatedTotal(int):
    """A ``total`` that is an estimate and may change while the run goes on (SA's automatic budget).

    It is an ``int``, so ``callback(step, total, message)`` implementations that divide by it keep
    working; :class:`ProgressTracker` reads the type to keep its bar monotone and say "about".
    """

    def __repr__(self) -> str:
        return f"EstimatedTotal({int(self)})"


class ProgressTracker:
    """A monotone bar position (0–1) from ``(step, total)`` reports whose total may be revised.

    When the total changes, the bar keeps its position and covers the remaining distance over the
    remaining steps of the new total, so it never jumps back (470 → 615 → 910 steps: 40% stays 40%).
    While the total is an estimate the bar stays below ``ESTIMATE_CEILING`` (the run is not over when
    the estimate is reached); an exact total reached is 100%. A total revised once counts as an
    estimate from then on, even when the reporter passed a plain ``int``.
    """

    def __init__(self) -> None:
        self.fraction = 0.0
        self.step = 0
        self.total = 0
        self.estimated = False
        self._anchor_step, self._anchor_fraction = 0, 0.0

    def update(self, step: int, total: int) -> float:
        """Record one report and return the bar position."""
        step, exact_end = int(step), not isinstance(total, EstimatedTotal)
        revised = bool(self.total) and int(total) != self.total
        self.estimated = (self.estimated or revised or not exact_end) and not (exact_end and step >= int(total) > 0)
        if int(total) <= 0:  # no total: position unknown, keep the bar where it is
            self.step = step
            return self.fraction
        if revised:
            self._anchor_step, self._anchor_fraction = self.step, self.fraction
        self.step, self.total = step, int(total)
        if step >= self.total and not self.estimated:
            self.fraction = 1.0
            return self.fraction
        span = self.total - self._anchor_step
        share = (step - self._anchor_step) / span if span > 0 else 1.0
        position = self._anchor_fraction + (1.0 - self._anchor_fraction) * min(max(share, 0.0), 1.0)
        if self.estimated:
            position = min(position, ESTIMATE_CEILING)
        self.fraction = max(self.fraction, position)
        return self.fraction

    def label(self) -> str:
        """``"470/615"``, or ``"470 of about 615 (estimated)"`` while the total is an estimate."""
        if not self.total:
            return str(self.step)
        if self.estimated:
            return f"{self.step} of about {self.total} (estimated)"
        return f"{self.step}/{self.total}"


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

    The bar is :class:`ProgressTracker`'s position (never backwards); its text gives the step and
    says "about … (estimated)" while the total is an estimate. ``notebook=None`` lets ``tqdm.auto``
    choose (widget in Jupyter, text in a terminal); ``False`` forces text (the CLI writes to
    stderr). ``enabled=False`` yields ``None`` so callers can pass it on unconditionally.
    """
    if not enabled:
        yield None
        return
    if notebook is False:
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    bar = tqdm(total=100, file=file, desc=desc, unit="%", mininterval=0.5)
    tracker = ProgressTracker()

    def update(step: int, total: int, message: str) -> None:
        target = round(100 * tracker.update(step, total))
        if target > bar.n:
            bar.set_postfix_str(f"step {tracker.label()} · {message[:60]}", refresh=False)
            bar.update(target - bar.n)  # update() honours mininterval; no flood of redraws

    try:
        yield update
    finally:
        bar.close()
