"""Every cell type covered: Sequential Attention's picks made against the worst-served type.

Plain SA takes, at each phase end, the candidate with the largest attention. On a few hundred cells
that lets the attention of large or easy types crowd out the rare ones: on pbmc68k_reduced SA's
20-gene panel lost 15–20 recall points on CD34+, NK and CD8+ cytotoxic T to the t-test panel
(benchmarks/README.md, *Gene panels*). A **type-coverage pick rule** keeps SA's attention as the
judge of *which gene* but decides *for which cell type* the next pick is made:

1. the candidates are grouped into per-type **marker pools** — each gene of the ``marker_pool · k``
   t-test marker panel belongs to the type whose turn picked it
   (:func:`seqattn.selectors.ttest.ttest_markers`, Welch t, one type vs rest); with ``marker_fdr`` a pool keeps
   only its type's significant up-regulated genes (:func:`~seqattn.selectors.ttest.significant_markers`) —
   the round robin hands a type its next-best t whatever it is, and a type with no real marker would
   otherwise stay worst-served and draw picks onto noise — so such a type has no pool and no pick is made for it;
2. at each pick the rule measures how well each type is **served** by the picks so far: a
   logistic regression (the evaluator's model, :func:`seqattn.scoring.panel_model`) refitted on the
   picks, on the run's training rows, scored on its validation rows — the held-out part of the
   *training* cells, never a test cell — as each type's recall (``score="recall"``; or its F1, or the mean
   probability of the true type: :data:`COVERAGE_SCORES`; ties: the lower mean probability of the true type);
3. the pick goes to the **worst-served** type among those allowed a pick (``"turns"``: the types with
   the fewest picks so far, so every type gets its share as the t-test panel gives it; ``"worst"``:
   any type at most MAX_LEAD picks ahead of the least-picked one), and within that type's pool to the
   unselected gene with the **largest attention** — the same attention-ranked, trained pick as plain SA.

With the structure head on (``structure_weight`` λ > 0, :mod:`seqattn.objectives`) the transcriptome's
structure is one more client: a share λ / (1 + λ) of the picks (:func:`structure_share`; every other pick at
λ = 1), spread evenly over the panel, is the largest-attention candidate of the **whole pool**, whatever its
type. Without that share the structure head only tilts the choice *within* a type's pool, and the genes that carry
the kNN graph and the clusters of all genes (the high-variance programmes of a few types) stay out:
benchmarks/README.md, *Structure*.

The rule sees only the fit's rows (each run its own training / validation split) and records, per pick,
the type it was made for (``trace.settings["pick_types"]``), which the Gene panel page shows.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqattn.data.stream import as_row_source
from seqattn.selectors.defaults import COVERAGE_RULES, COVERAGE_SCORES  # declared there for the CLI (no torch)

#: "worst": a type may be served while it has fewer than (the least-picked type's picks + MAX_LEAD) picks.
MAX_LEAD = 2
#: The served-ness refit reads at most this many training rows (and all validation rows of the run).
MAX_FIT_ROWS = 4000


def structure_share(structure_weight: float) -> float:
    """The share of picks made for the structure rather than a cell type: λ / (1 + λ), the structure's
    weight in the loss ``task + λ · structure`` as a share of the whole (0 without the head)."""
    weight = max(0.0, float(structure_weight))
    return weight / (1.0 + weight)


def is_structure_pick(n_picked: int, share: float) -> bool:
    """Whether pick number ``n_picked`` (0-based) is made for the structure: the picks for it are spread evenly,
    pick n being one when ⌊(n + 1)·share⌋ passes ⌊n·share⌋ (share ½: picks 2, 4, 6, …; the first is a type's)."""
    return share > 0 and int(np.floor((n_picked + 1) * share + 1e-9)) > int(np.floor(n_picked * share + 1e-9))


@dataclass
class TypeCoverage:
    """The pick rule of one fit: per-type marker pools and the served-ness of every picked set.

    ``pools[c]`` are the unit indices pooled for type ``c`` (best marker first); ``rows_for(seed)``
    gives a run's (training, validation) rows. Served-ness is cached per picked set, so runs that agree
    on a prefix share the refit.
    """

    rule: str
    pools: list[list[int]]
    X: Any
    y: np.ndarray
    rows_for: Any  # seed -> (train rows, validation rows)
    score: str = "recall"
    structure: float = 0.0  # the share of picks made for the structure (structure_share), from the whole pool
    type_of: dict[int, int] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.rule not in COVERAGE_RULES[1:]:
            raise ValueError(f"coverage must be one of {COVERAGE_RULES}, got {self.rule!r}.")
        if self.score not in COVERAGE_SCORES:
            raise ValueError(f"coverage_score must be one of {COVERAGE_SCORES}, got {self.score!r}.")
        if not 0.0 <= self.structure < 1.0:
            raise ValueError(f"the structure's share of picks must be in [0, 1), got {self.structure!r}.")
        self.type_of = {int(u): c for c, pool in enumerate(self.pools) for u in pool}
        self.source = as_row_source(self.X)
        self._pooled = sorted(self.type_of)  # the pools' columns, read once per run's rows (_pooled_block)
        self._pooled_at = {u: i for i, u in enumerate(self._pooled)}
        self._fit_rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._blocks: dict[tuple[int, str], Any] = {}

    @classmethod
    def from_marker_panel(cls, rule: str, markers: Sequence[int], marker_types: Sequence[int], X: Any,
                          y: np.ndarray, rows_for: Any, score: str = "recall",
                          structure: float = 0.0, significant: np.ndarray | None = None) -> "TypeCoverage":
        """Pools from a t-test marker panel in pick order and the type each of its picks was made for.

        ``significant`` (n_types × n_units, :func:`~seqattn.selectors.ttest.significant_markers`): a pool keeps
        only its type's significant up-regulated genes, so a type with none gets no pool and no pick is made
        for it (the round robin hands every type its next-best t, whatever it is)."""
        n_types = int(np.max(y)) + 1
        pools: list[list[int]] = [[] for _ in range(n_types)]
        for unit, c in zip(markers, marker_types):
            if significant is None or significant[int(c), int(unit)]:
                pools[int(c)].append(int(unit))
        return cls(rule, pools, X, np.asarray(y), rows_for, score, structure)

    # ------------------------------------------------------------------ the pick
    def choose(self, scores: np.ndarray, picked: Sequence[int], seed: int) -> int:
        """The pick: the largest-attention candidate in the pool of the worst-served type allowed a pick.

        ``scores`` is the attention over all units (NaN where a unit is no candidate); ``picked`` the run's
        picks so far (pinned units excluded). A pick made for the structure (:func:`is_structure_pick`) is the
        largest-attention candidate of all pools. Falls back to the plain argmax when no pool has a candidate.
        """
        scores = np.asarray(scores, dtype=np.float64)
        if is_structure_pick(len(picked), self.structure):
            pooled = [u for u in self._pooled if np.isfinite(scores[u])]
            if pooled:
                return int(max(pooled, key=lambda u: (scores[u], -u)))
        for c in self.type_order(picked, seed):
            pool = [u for u in self.pools[c] if np.isfinite(scores[u])]
            if pool:
                return int(max(pool, key=lambda u: (scores[u], -u)))
        return int(np.nanargmax(scores))

    def type_order(self, picked: Sequence[int], seed: int) -> list[int]:
        """Types in the order they are served next: allowed types first (by the rule), worst-served first."""
        counts = np.zeros(len(self.pools), dtype=np.int64)
        for u in picked:
            if int(u) in self.type_of:
                counts[self.type_of[int(u)]] += 1
        served, probability = self.served(picked, seed)
        has_pool = np.array([len(p) > 0 for p in self.pools])
        least = counts[has_pool].min() if has_pool.any() else 0
        lead = 1 if self.rule == "turns" else MAX_LEAD
        allowed = has_pool & (counts < least + lead)
        return sorted(np.flatnonzero(has_pool).tolist(),
                      key=lambda c: (not allowed[c], served[c], probability[c], counts[c], c))

    def served(self, picked: Sequence[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Per type: the served-ness score (``score``: recall, F1 or the mean probability) and the mean
        probability of the true type on the run's validation rows, of a logistic regression refitted on
        ``picked`` (no picks: the class prior, which predicts the largest type)."""
        key = (frozenset(int(u) for u in picked), int(seed))
        if key not in self._cache:
            self._cache[key] = self._refit(sorted(key[0]), seed)
        return self._cache[key]

    def _refit(self, picked: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
        from seqattn.device import single_threaded

        with single_threaded():  # a small refit: one thread was ~20× cheaper than several on the busy 2-core box
            return self._served_now(picked, seed)

    def _served_now(self, picked: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
        from seqattn.scoring import panel_model

        train, val = self._rows(seed)
        n_types = len(self.pools)
        y_train, y_val = self.y[train], self.y[val]
        present = np.unique(y_train)
        if not picked or len(present) < 2:
            prior = np.bincount(y_train, minlength=n_types) / max(1, len(y_train))
            predicted = np.full(len(val), int(np.argmax(prior)))
            probability = np.tile(prior, (len(val), 1))
        else:
            model = panel_model(self._columns(train, picked, (seed, "train")), y_train, 500)
            X_val = self._columns(val, picked, (seed, "val"))
            predicted = model.predict(X_val)
            probability = np.zeros((len(val), n_types))
            probability[:, model.classes_] = model.predict_proba(X_val)
        return self._per_type(y_val, predicted, probability)

    def _per_type(self, y_val: np.ndarray, predicted: np.ndarray,
                  probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(served-ness by ``score``, mean probability of the true type) per type on the validation rows."""
        n_types = len(self.pools)
        served, mean_probability = np.ones(n_types), np.ones(n_types)
        for c in range(n_types):
            mine = y_val == c
            if not mine.any():  # a type without validation cells counts as served (nothing to measure it on)
                continue
            mean_probability[c] = float(np.mean(probability[mine, c]))
            hits = float(np.sum(predicted[mine] == c))
            if self.score == "recall":
                served[c] = hits / mine.sum()
            elif self.score == "f1":  # 2·TP / (cells of c + cells called c)
                served[c] = 2 * hits / (mine.sum() + np.sum(predicted == c))
            else:
                served[c] = mean_probability[c]
        return served, mean_probability

    def _rows(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A run's refit rows (at most MAX_FIT_ROWS of its training rows) and validation rows, drawn once."""
        if seed not in self._fit_rows:
            train, val = self.rows_for(seed)
            if len(train) > MAX_FIT_ROWS:
                train = np.sort(np.random.default_rng(seed).choice(train, MAX_FIT_ROWS, replace=False))
            self._fit_rows[seed] = (np.asarray(train), np.asarray(val))
        return self._fit_rows[seed]

    def _columns(self, rows: np.ndarray, units: list[int], key: tuple[int, str]) -> np.ndarray:
        """The picked columns on ``rows`` (a run's :meth:`_rows`, named by ``key``), read once per run for all
        pooled columns: a refit per pick that read every gene of its rows again dominated a 200-gene panel
        from 20,000 genes."""
        if all(u in self._pooled_at for u in units):
            if key not in self._blocks:
                self._blocks[key] = self.source.read(np.asarray(rows))[:, self._pooled]
            block = self._blocks[key][:, [self._pooled_at[u] for u in units]]
        else:  # a pick outside every pool (the plain-argmax fallback): read its rows afresh
            block = self.source.read(np.asarray(rows))[:, units]
        return block.toarray() if hasattr(block, "toarray") else np.asarray(block)

    # ------------------------------------------------------------------ the record
    def types_without_pool(self, class_names: Sequence[Any]) -> list[str]:
        """The types no pick can be made for: their pool is empty (no significant marker among the candidates)."""
        return [str(class_names[c]) for c, pool in enumerate(self.pools) if not pool]

    def pick_types(self, picks: Sequence[int], class_names: Sequence[Any]) -> list[str]:
        """The type each pick was made for (its pool's type; "" for a unit outside every pool)."""
        return [str(class_names[self.type_of[int(u)]]) if int(u) in self.type_of else "" for u in picks]

    #: How :meth:`consensus` combines runs, in the trace's words (``settings["consensus"]``).
    CONSENSUS = ("each cell type keeps its mean share of the runs' picks, filled with its genes most runs picked; "
                 "then most runs first, then earliest mean pick position")

    def consensus(self, runs: Sequence[Sequence[int]], n_units: int, k: int) -> list[int]:
        """The panel of B runs with each type's share kept: type c gets the runs' mean number of picks for
        c (largest remainders round to k), filled with its most-picked genes; the panel is then ordered as
        :func:`~seqattn.selectors.stability.consensus_order` orders it (most runs, then earliest)."""
        from seqattn.selectors.stability import selection_counts

        counts, mean_position = selection_counts(runs, n_units)
        rank = lambda u: (-counts[u], mean_position[u], u)  # noqa: E731
        by_type: dict[int, list[int]] = {}
        for u in sorted(np.flatnonzero(counts > 0).tolist(), key=rank):
            by_type.setdefault(self.type_of.get(int(u), -1), []).append(int(u))
        picks_per_type = Counter(self.type_of.get(int(u), -1) for r in runs for u in r)
        share = {c: picks_per_type[c] / max(1, len(runs)) for c in by_type}
        quota = {c: min(int(np.floor(share[c])), len(by_type[c])) for c in by_type}
        total = min(k, sum(len(v) for v in by_type.values()))
        while sum(quota.values()) < total:  # largest remainder: the type furthest below its share first
            c = max((c for c in by_type if quota[c] < len(by_type[c])), key=lambda c: (share[c] - quota[c], -c))
            quota[c] += 1
        while sum(quota.values()) > total:  # more shares than k: trim the type furthest above its share, then the
            c = max((c for c in quota if quota[c] > 0), key=lambda c: (quota[c] - share[c], quota[c], c))  # largest
            quota[c] -= 1
        panel = [u for c in by_type for u in by_type[c][:quota[c]]]
        return sorted(panel, key=rank)[:k]

    def describe(self) -> dict[str, Any]:
        measure = {"recall": "recall", "f1": "F1", "probability": "mean probability of the true type"}[self.score]
        return {"coverage": self.rule, "coverage_max_lead": 1 if self.rule == "turns" else MAX_LEAD,
                "coverage_score": self.score, "coverage_structure_share": round(self.structure, 4),
                "coverage_served_by": f"{measure} of a logistic regression refitted on the picks, on each run's "
                                      "validation rows of the training cells"}


__all__ = ["COVERAGE_RULES", "COVERAGE_SCORES", "MAX_LEAD", "TypeCoverage", "is_structure_pick", "structure_share"]
