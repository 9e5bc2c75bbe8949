"""When Sequential Attention warms up, when it picks, and when it stops.

The training loop asks a schedule two things before every optimizer step
(``dense``: still in the dense warm-up? ``pick_due()``: make a pick now?) and
tells it after every step (``after_step(probe)``). Two schedules share that
interface:

* :class:`FixedSchedule` — ``epochs=N``: exactly N epochs, the first 10% of
  the optimizer steps a dense warm-up, the rest split into k equal phases
  (the reference code's schedule).
* :class:`ConvergenceSchedule` — the default: the warm-up runs until the
  validation loss stops improving (:class:`LossPlateau`: patience, with a
  minimum and a cap; shorter than plain training's "converged", since the
  phases keep training the network), and
  each phase runs until the attention has *separated* — the leading
  candidate's weight is at least ``separation`` × the uniform share and it is
  not a near-tie (:func:`seqattn.trace.is_near_tie`: it stands out from the
  other candidates by more than noise would) at every check for
  ``stable_steps`` — between a minimum and a cap in optimizer steps. The
  leader may change during those steps: two equally strong candidates that
  trade the lead are both good picks (the next phase takes the other), and
  waiting for one of them to win outright only ran phases to their cap. A
  phase that hits its cap ends with whatever leads; its pick's confidence
  (recorded in the trace) says how clear it was. The phases share a step
  budget (PHASE_BUDGET, PICK_BUDGET). One pick per phase by default; with
  ``max_picks_per_phase`` > 1 the candidates that separated *together*
  (:func:`separated_together`) are picked at one phase end, each from the
  attention renormalised over the candidates left — fewer phases, but
  not greedy: redundant candidates (two markers of one cell type) can
  separate together and both be picked.

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
#: "Trained to convergence": the validation loss has not improved by WARMUP_TOLERANCE (relative) for
#: CONVERGENCE_PATIENCE checks. Plain training's stopping rule, the baseline SA's cost is measured against
#: (benchmarks/bench_selection.py).
CONVERGENCE_PATIENCE = 20
#: SA's warm-up hands over to the phases after HANDOVER_PATIENCE checks without improvement: the phases keep
#: training the network, so the dense warm-up need not prove convergence.
HANDOVER_PATIENCE = 5
WARMUP_TOLERANCE = 1e-3
WARMUP_MIN_STEPS = 200
WARMUP_MAX_STEPS = 3000
SEPARATION = 2.0  # leader's weight / uniform share that counts as "separated"
STABLE_STEPS = 10  # the attention must have stayed separated for this many steps
PHASE_MAX_FACTOR = 6  # phase cap = this × the phase minimum (the phase budget below may cap a phase sooner)
#: The phases together may spend PHASE_BUDGET × the warm-up's steps; each phase up to BUDGET_SLACK × its fair
#: share of what is left (phases that separate early leave more to the later ones), never below the phase
#: minimum: once the budget is spent, the remaining phases run the minimum (still one pick each).
PHASE_BUDGET = 1.5
#: ... but never less than PICK_BUDGET × the phase minimum per pick: a short warm-up (200 steps on mnist_5k) must
#: not starve the phases of a large k (their picks would be made before the attention separated).
PICK_BUDGET = 3.0
BUDGET_SLACK = 2.0
#: Several picks at one phase end: the candidates that separated *together* (each separated itself, holding
#: ≥ JOINT_SHARE of the leader's weight, with a gap of JOINT_GAP× below the group), at most MAX_PICKS_PER_PHASE.
#: Off by default (1): candidates that separate together may be redundant with each other, and picking them
#: together is then not what greedy selection would do.
JOINT_SHARE = 0.8
JOINT_GAP = 1.5
MAX_PICKS_PER_PHASE = 1


def is_separated(weights: np.ndarray, candidate: int, separation: float = SEPARATION) -> bool:
    """``candidate`` holds ≥ ``separation`` × the uniform share and stands out from the other candidates by
    more than noise would (not a near-tie, :func:`seqattn.trace.is_near_tie`)."""
    confidence, _, _, spread = assess_pick(weights, candidate)
    n_candidates = int(np.isfinite(weights).sum())
    return confidence is not None and confidence >= separation and not is_near_tie(confidence, spread, n_candidates)


def separated_together(weights: np.ndarray, limit: int, separation: float = SEPARATION,
                       share: float = JOINT_SHARE, gap: float = JOINT_GAP) -> list[int]:
    """The candidates that have separated together, strongest first, at most ``limit`` (at least the leader
    when it has separated; empty when it has not).

    A group is the top m candidates when every one of them is separated (:func:`is_separated`), the weakest
    holds ≥ ``share`` of the leader's weight, and the next candidate holds less than 1/``gap`` of the weakest's:
    the group stands clear of the rest *as a group*. The largest such m wins. A crowd whose weights fall off
    smoothly has no gap, so it gets one pick per phase.
    """
    finite = np.isfinite(weights)
    if not finite.any() or limit < 1:
        return []
    values = np.where(finite, weights, -np.inf)
    order = np.argsort(-values, kind="stable")
    if not is_separated(weights, int(order[0]), separation):
        return []
    tight = 1  # the top `tight` candidates are separated and hold >= share of the leader's weight
    while (tight < len(order) and finite[order[tight]] and values[order[tight]] >= share * values[order[0]]
           and is_separated(weights, int(order[tight]), separation)):
        tight += 1
    for size in range(tight, 1, -1):  # the largest tight group with a gap below it
        below = values[order[size]] if size < len(order) else -np.inf
        if below < values[order[size - 1]] / gap:
            return [int(c) for c in order[:min(size, int(limit))]]
    return [int(order[0])]


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

    def due_now(self) -> int:
        """Picks due before the next step: each phase of the fixed schedule makes one."""
        return int(self.pick_due())

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
class LossPlateau:
    """Has the validation loss stopped improving? ``patience`` checks (one every ``check_every`` steps) without
    a relative improvement of ``tolerance``, after at least ``min_steps``; or ``max_steps``; or a non-finite loss.

    :meth:`converged` is plain training's "trained to convergence"; SA's warm-up uses a shorter patience.
    """

    patience: int = HANDOVER_PATIENCE
    tolerance: float = WARMUP_TOLERANCE
    min_steps: int = WARMUP_MIN_STEPS
    max_steps: int = WARMUP_MAX_STEPS
    check_every: int = CHECK_EVERY
    best: float = math.inf
    bad_checks: int = 0

    @classmethod
    def converged(cls) -> "LossPlateau":
        """Plain training's stopping rule: the baseline SA's cost is measured against."""
        return cls(patience=CONVERGENCE_PATIENCE)

    def reached(self, step: int, loss: Callable[[], float]) -> bool:
        """After optimizer step ``step``: has the plateau been reached? Reads ``loss()`` only on check steps."""
        if step % self.check_every and step < self.max_steps:
            return False
        value = loss()
        if value < self.best * (1 - self.tolerance) - 1e-12:
            self.best, self.bad_checks = value, 0
        else:
            self.bad_checks += 1
        converged = self.bad_checks >= self.patience and step >= self.min_steps
        return converged or step >= self.max_steps or not math.isfinite(value)


@dataclass
class ConvergenceSchedule:
    """Warm-up until the validation loss stops improving; each phase until the attention has separated
    (or its leader stops rising, or the cap); at a phase end one pick, or several that separated together."""

    k: int
    min_phase_steps: int
    max_phase_steps: int
    selection_point: str = "end"
    check_every: int = CHECK_EVERY
    phase_check_every: int = PHASE_CHECK_EVERY
    warmup_patience: int = HANDOVER_PATIENCE
    warmup_min_steps: int = WARMUP_MIN_STEPS
    warmup_max_steps: int = WARMUP_MAX_STEPS
    separation: float = SEPARATION
    stable_steps: int = STABLE_STEPS
    max_picks_per_phase: int = MAX_PICKS_PER_PHASE
    joint_share: float = JOINT_SHARE
    joint_gap: float = JOINT_GAP
    phase_budget: float | None = None  # the phases' steps together ≤ this × the warm-up's; None: no budget
    pick_budget: float = PICK_BUDGET  # ... or this × min_phase_steps per pick, whichever is larger
    budget_slack: float = BUDGET_SLACK  # a phase may take this × its fair share of the budget left
    step: int = 0
    picks: int = 0
    warmup_steps: int | None = None  # set when the warm-up ends
    phase_steps: list[int] = field(default_factory=list)  # length of every finished phase
    picks_per_phase: list[int] = field(default_factory=list)
    capped_phases: int = 0
    _in_phase: int = 0
    _phase_cap: int = 0
    _separated_for: int = 0
    _due: int = 0

    def __post_init__(self) -> None:
        self._plateau = LossPlateau(self.warmup_patience, WARMUP_TOLERANCE, self.warmup_min_steps,
                                    self.warmup_max_steps, self.check_every)

    @property
    def dense(self) -> bool:
        return self.warmup_steps is None

    @property
    def finished(self) -> bool:
        return self.picks >= self.k

    def pick_due(self) -> bool:
        return self._due > 0 and not self.finished

    def due_now(self) -> int:
        """Picks still due at this phase end (the trainer keeps the attention until the last of them)."""
        return min(self._due, self.k - self.picks) if self.pick_due() else 0

    def picked(self) -> None:
        self.picks += 1
        self._due = max(0, self._due - 1)
        if not self._due:
            self._in_phase, self._separated_for = 0, 0

    def after_step(self, probe: Probe) -> None:
        self.step += 1
        if not self.dense:
            self._phase_step(probe)
        elif self._plateau.reached(self.step, probe.validation_loss):
            self.warmup_steps = self.step
            self._due = int(self.selection_point == "start")  # the reference picks as the first phase begins

    def _phase_step(self, probe: Probe) -> None:
        self._in_phase += 1
        if self._in_phase == 1:
            self._phase_cap = self._cap_for_this_phase()
        if self._in_phase >= self._phase_cap:
            self._end_phase(probe.attention(), separated=False)
            return
        if self._in_phase % self.phase_check_every:
            return
        weights = probe.attention()
        finite = np.isfinite(weights)
        if not finite.any():
            return
        leader = int(np.nanargmax(weights))
        self._separated_for = (self._separated_for + self.phase_check_every
                               if is_separated(weights, leader, self.separation) else 0)
        if self._in_phase >= self.min_phase_steps and self._separated_for >= self.stable_steps:
            self._end_phase(weights, separated=True)

    @property
    def budget_left(self) -> float:
        """Phase steps still affordable (inf without a phase budget)."""
        if self.phase_budget is None or self.warmup_steps is None:
            return math.inf
        budget = max(self.phase_budget * self.warmup_steps, self.pick_budget * self.min_phase_steps * self.k)
        return budget - sum(self.phase_steps)

    def _cap_for_this_phase(self) -> int:
        """The hard cap, or ``budget_slack`` × this phase's fair share of the budget left, not below the minimum."""
        left = self.budget_left
        if math.isinf(left):
            return self.max_phase_steps
        share = self.budget_slack * left / max(1, self.k - self.picks)
        return int(min(self.max_phase_steps, max(self.min_phase_steps, share)))

    def _end_phase(self, weights: np.ndarray, separated: bool) -> None:
        """Close the phase; the picks due are the candidates that separated together (at least the leader).
        A phase that ended at its cap makes one pick, whatever leads (its confidence in the trace says how clear)."""
        self.phase_steps.append(self._in_phase)
        self.capped_phases += int(not separated)
        limit = min(self.max_picks_per_phase, self.k - self.picks)
        joint = (separated_together(weights, limit, self.separation, self.joint_share, self.joint_gap)
                 if separated else [])
        self._due = max(1, len(joint))
        self.picks_per_phase.append(self._due)
        self._in_phase = 0

    def estimated_total(self) -> int:
        """Steps so far plus the remaining phases at the mean length and picks seen so far (progress bars)."""
        per_phase = (sum(self.phase_steps) / len(self.phase_steps)) if self.phase_steps else self.min_phase_steps
        per_pick = (sum(self.picks_per_phase) / len(self.picks_per_phase)) if self.picks_per_phase else 1.0
        remaining = (self.k - self.picks - (self.dense and self.selection_point == "start")) / per_pick
        warm = max(0, self.warmup_min_steps - self.step) if self.dense else 0
        return int(self.step + warm + max(0.0, remaining * per_phase - self._in_phase))

    def phase_label(self) -> str:
        return "warm-up" if self.dense else f"phase {len(self.phase_steps) + 1}, pick {min(self.picks + 1, self.k)}/{self.k}"

    def summary(self) -> dict[str, Any]:
        return {"budget": "auto", "total_steps": self.step, "warmup_steps": self.warmup_steps,
                "phase_steps": list(self.phase_steps), "picks_per_phase": list(self.picks_per_phase),
                "capped_phases": self.capped_phases, "min_phase_steps": self.min_phase_steps,
                "max_phase_steps": self.max_phase_steps, "max_picks_per_phase": self.max_picks_per_phase,
                "joint_share": self.joint_share, "joint_gap": self.joint_gap, "phase_budget": self.phase_budget,
                "pick_budget": self.pick_budget,
                "budget_slack": self.budget_slack, "separation": self.separation,
                "stable_steps": self.stable_steps, "warmup_patience": self.warmup_patience,
                "check_every": self.check_every, "phase_check_every": self.phase_check_every,
                "warmup_max_steps": self.warmup_max_steps}
