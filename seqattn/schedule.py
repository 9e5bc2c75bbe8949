"""When Sequential Attention warms up, when it picks, and when it stops.

The training loop asks a schedule two things before every optimizer step
(``dense``: still in the dense warm-up? ``pick_due()``: make a pick now?) and
tells it after every step (``after_step(probe)``). Two schedules share that
interface:

* :class:`FixedSchedule` — ``epochs=N``: exactly N epochs, the first 10% of
  the optimizer steps a dense warm-up, the rest split into k equal phases
  (the reference code's schedule).
* :class:`ConvergenceSchedule` — the default: the warm-up runs until the
  validation loss stops improving (patience, with a minimum and a cap), and
  each phase runs until the attention has *separated* — the leading
  candidate's weight is at least ``separation`` × the uniform share and it is
  not a near-tie (:func:`seqattn.trace.is_near_tie`: it stands out from the
  other candidates by more than noise would) at every check for
  ``stable_steps`` — between a minimum and a cap in optimizer steps. The
  leader may change during those steps: two equally strong candidates that
  trade the lead are both good picks (the next phase takes the other), and
  waiting for one of them to win outright only ran phases to their cap. A
  phase that hits its cap ends with whatever leads; its pick's confidence
  (recorded in the trace) says how clear it was.

Both support ``selection_point="start"`` (pick at the start of each phase,
as the reference does) and ``"end"`` (pick after training each phase).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqattn.trace import assess_pick, is_near_tie

WARMUP_FRACTION = 0.1  # fixed schedule: share of the optimizer steps spent in the dense warm-up

#: Convergence schedule defaults (optimizer steps unless said otherwise); recorded in the trace's settings.
CHECK_EVERY = 10  # how often the warm-up looks at the validation loss
PHASE_CHECK_EVERY = 5  # how often a phase looks at the attention (cheap: one softmax read back)
WARMUP_PATIENCE = 20  # checks without a relative improvement of WARMUP_TOLERANCE end the warm-up (XOR-like
#: interactions are learnt after a plateau of the validation loss: a short patience stops before them)
WARMUP_TOLERANCE = 1e-3
WARMUP_MIN_STEPS = 200
WARMUP_MAX_STEPS = 3000
SEPARATION = 2.0  # leader's weight / uniform share that counts as "separated"
STABLE_STEPS = 10  # the attention must have stayed separated for this many steps
PHASE_MAX_FACTOR = 6  # phase cap = this × the phase minimum


@dataclass
class Probe:
    """Lazy read-outs the convergence schedule asks for (each costs a host sync)."""

    validation_loss: Callable[[], float]
    attention: Callable[[], np.ndarray]  # weights over the candidates; NaN elsewhere


@dataclass
class FixedSchedule:
    """Exactly ``total_steps`` optimizer steps: 10% warm-up, then k equal phases."""

    k: int
    total_steps: int
    selection_point: str = "end"
    step: int = 0
    picks: int = 0
    note: str = ""  # why the run differs from what was asked (recorded in the trace's settings)

    @staticmethod
    def holds(k: int, total_steps: int) -> bool:
        """The one rule for "enough steps": after the warm-up, every one of the k phases gets a step."""
        return total_steps - int(WARMUP_FRACTION * total_steps) >= k

    @classmethod
    def fewest_steps(cls, k: int) -> int:
        """The fewest optimizer steps that hold k phases (SA extends a too-short ``epochs`` to this)."""
        total = k
        while not cls.holds(k, total):
            total += 1
        return total

    def __post_init__(self) -> None:
        if not self.holds(self.k, self.total_steps):
            raise ValueError(f"{self.total_steps} optimizer steps cannot hold {self.k} selection phases; "
                             f"at least {self.fewest_steps(self.k)} are needed.")
        self.warmup_steps = int(WARMUP_FRACTION * self.total_steps)
        phase = (self.total_steps - self.warmup_steps) / self.k
        offset = 1 if self.selection_point == "end" else 0
        # optimizer step at which pick j (0-based) is made
        self.pick_steps = [self.warmup_steps + round((j + offset) * phase) for j in range(self.k)]

    @property
    def dense(self) -> bool:
        return self.step < self.warmup_steps

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps and self.picks >= self.k

    def pick_due(self) -> bool:
        return self.picks < self.k and (self.step >= self.pick_steps[self.picks] or self.step >= self.total_steps)

    def picked(self) -> None:
        self.picks += 1

    def after_step(self, probe: Probe) -> None:
        self.step += 1

    def estimated_total(self) -> int:
        return self.total_steps

    def phase_label(self) -> str:
        return "warm-up" if self.dense else f"phase {min(self.picks + 1, self.k)}/{self.k}"

    def summary(self) -> dict[str, Any]:
        summary = {"budget": "fixed", "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}
        return {**summary, "budget_note": self.note} if self.note else summary


@dataclass
class ConvergenceSchedule:
    """Warm-up until the validation loss stops improving; each phase until the attention has separated."""

    k: int
    min_phase_steps: int
    max_phase_steps: int
    selection_point: str = "end"
    check_every: int = CHECK_EVERY
    phase_check_every: int = PHASE_CHECK_EVERY
    warmup_patience: int = WARMUP_PATIENCE
    warmup_min_steps: int = WARMUP_MIN_STEPS
    warmup_max_steps: int = WARMUP_MAX_STEPS
    separation: float = SEPARATION
    stable_steps: int = STABLE_STEPS
    step: int = 0
    picks: int = 0
    warmup_steps: int | None = None  # set when the warm-up ends
    phase_steps: list[int] = field(default_factory=list)  # length of every finished phase
    capped_phases: int = 0
    _best: float = math.inf
    _bad_checks: int = 0
    _in_phase: int = 0
    _separated_for: int = 0
    _due: bool = False

    @property
    def dense(self) -> bool:
        return self.warmup_steps is None

    @property
    def finished(self) -> bool:
        return self.picks >= self.k

    def pick_due(self) -> bool:
        return self._due and not self.finished

    def picked(self) -> None:
        self.picks += 1
        self._due = False
        self._in_phase, self._separated_for = 0, 0

    def after_step(self, probe: Probe) -> None:
        self.step += 1
        if self.dense:
            self._warmup_step(probe)
        else:
            self._phase_step(probe)

    def _warmup_step(self, probe: Probe) -> None:
        if self.step % self.check_every and self.step < self.warmup_max_steps:
            return
        loss = probe.validation_loss()
        if loss < self._best * (1 - WARMUP_TOLERANCE) - 1e-12:
            self._best, self._bad_checks = loss, 0
        else:
            self._bad_checks += 1
        converged = self._bad_checks >= self.warmup_patience and self.step >= self.warmup_min_steps
        if converged or self.step >= self.warmup_max_steps or not math.isfinite(loss):
            self.warmup_steps = self.step
            self._due = self.selection_point == "start"  # the reference picks as the first phase begins

    def _phase_step(self, probe: Probe) -> None:
        self._in_phase += 1
        if self._in_phase >= self.max_phase_steps:
            self._end_phase(capped=True)
            return
        if self._in_phase % self.phase_check_every:
            return
        weights = probe.attention()
        finite = np.isfinite(weights)
        if not finite.any():
            return
        leader = int(np.nanargmax(weights))
        confidence, _, _, separation = assess_pick(weights, leader)
        separated = (confidence is not None and confidence >= self.separation
                     and not is_near_tie(confidence, separation, int(finite.sum())))
        self._separated_for = self._separated_for + self.phase_check_every if separated else 0
        if self._in_phase >= self.min_phase_steps and self._separated_for >= self.stable_steps:
            self._end_phase(capped=False)

    def _end_phase(self, capped: bool) -> None:
        self.phase_steps.append(self._in_phase)
        self.capped_phases += int(capped)
        self._in_phase = 0
        self._due = True

    def estimated_total(self) -> int:
        """Steps so far plus the remaining phases at the mean length seen so far (progress bars)."""
        per_phase = (sum(self.phase_steps) / len(self.phase_steps)) if self.phase_steps else self.min_phase_steps
        remaining = self.k - self.picks - (self.dense and self.selection_point == "start")
        warm = max(0, self.warmup_min_steps - self.step) if self.dense else 0
        return int(self.step + warm + max(0.0, remaining * per_phase - self._in_phase))

    def phase_label(self) -> str:
        return "warm-up" if self.dense else f"phase {min(self.picks + 1, self.k)}/{self.k}"

    def summary(self) -> dict[str, Any]:
        return {"budget": "auto", "total_steps": self.step, "warmup_steps": self.warmup_steps,
                "phase_steps": list(self.phase_steps), "capped_phases": self.capped_phases,
                "min_phase_steps": self.min_phase_steps, "max_phase_steps": self.max_phase_steps,
                "separation": self.separation, "stable_steps": self.stable_steps,
                "warmup_patience": self.warmup_patience, "check_every": self.check_every,
                "phase_check_every": self.phase_check_every,
                "warmup_max_steps": self.warmup_max_steps}
