"""Feature groups: selection units that span several columns.

A one-hot encoded text column, a numeric column with its missing-value
indicator, or a user-defined gene set is picked (and reported) as one unit.
A single column is a group of one, so a data set without groups behaves
exactly as before.

Groups partition the columns: every column belongs to exactly one group.
Selectors work on group indices; :meth:`FeatureGroups.expand` turns picks back
into column indices for refits and ``transform``. How each method treats a
group (documented in the README):

* SA: one attention logit per group; the group's weight multiplies all its columns.
* OMP: the group whose (orthonormalised) columns capture the most residual,
  ``‖Q_gᵀ r‖`` (group OMP, Lozano et al. 2009); for a single column this is
  the usual ``|x_iᵀ r| / ‖x_i‖``.
* greedy: refits with all of the group's columns added at once.
* filters: the group's score is its best column's score (``max``).
* SHAP: the group's score is the sum of its columns' mean |SHAP| (SHAP values are additive).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from seqattn.data.errors import DataError


@dataclass(frozen=True)
class FeatureGroups:
    """Group names and, per group, the column indices it holds (a partition of the columns)."""

    names: tuple[str, ...]
    columns: tuple[tuple[int, ...], ...]
    n_columns: int

    def __post_init__(self) -> None:
        if len(self.names) != len(self.columns):
            raise DataError(f"{len(self.names)} group names for {len(self.columns)} groups.")
        if len(set(self.names)) != len(self.names):
            dupes = sorted({n for n in self.names if self.names.count(n) > 1})
            raise DataError(f"Duplicate group names: {', '.join(map(repr, dupes))}; each group needs its own name.")
        seen: dict[int, str] = {}
        for name, cols in zip(self.names, self.columns):
            if not cols:
                raise DataError(f"Group {name!r} holds no columns.")
            for c in cols:
                if not 0 <= c < self.n_columns:
                    raise DataError(f"Group {name!r} refers to column {c}, outside 0..{self.n_columns - 1}.")
                if c in seen:
                    raise DataError(f"Column {c} is in two groups ({seen[c]!r} and {name!r}); groups must not "
                                    "overlap.")
                seen[c] = name
        if len(seen) != self.n_columns:
            missing = sorted(set(range(self.n_columns)) - set(seen))[:10]
            raise DataError(f"Columns {missing} belong to no group; every column needs a group (a group of one is fine).")

    # ----------------------------------------------------------- constructors
    @classmethod
    def singletons(cls, feature_names: Sequence[str]) -> "FeatureGroups":
        return cls(tuple(map(str, feature_names)), tuple((j,) for j in range(len(feature_names))),
                   len(feature_names))

    @classmethod
    def from_mapping(cls, groups: Mapping[str, Sequence[str | int]], feature_names: Sequence[str],
                     base: "FeatureGroups | None" = None) -> "FeatureGroups":
        """User groups (``{"T cell genes": ["CD3E", "CD3D"], ...}``; names or indices).

        Columns in no user group keep their ``base`` group (or become a group of
        one). Groups are ordered by their first column, so the order follows the table.
        """
        names = [str(n) for n in feature_names]
        lookup = {n: j for j, n in enumerate(names)}
        base = base or cls.singletons(names)
        assigned: dict[int, str] = {}
        user: dict[str, list[int]] = {}
        for group, members in groups.items():
            if isinstance(members, (str, bytes)):
                raise DataError(f"Group {group!r} must list its columns, got the single string {members!r}.")
            cols = []
            for m in members:
                if isinstance(m, (int, np.integer)) and not isinstance(m, bool):
                    j = int(m)
                    if not 0 <= j < len(names):
                        raise DataError(f"Group {group!r}: column index {j} is outside 0..{len(names) - 1}.")
                elif str(m) in lookup:
                    j = lookup[str(m)]
                else:
                    raise DataError(f"Group {group!r}: no column named {m!r}.")
                if j in assigned:
                    raise DataError(f"Column {names[j]!r} is in two groups ({assigned[j]!r} and {group!r}).")
                assigned[j] = str(group)
                cols.append(j)
            if not cols:
                raise DataError(f"Group {group!r} holds no columns.")
            user[str(group)] = cols
        # a base group (e.g. a one-hot column) joins a user group whole when any of its columns did
        units: list[tuple[str, list[int]]] = [(g, sorted(set(c))) for g, c in user.items()]
        for name, cols in zip(base.names, base.columns):
            owners = {assigned[c] for c in cols if c in assigned}
            if not owners:
                units.append((name, list(cols)))
            else:
                owner = sorted(owners)[0]
                target = next(u for u in units if u[0] == owner)
                target[1][:] = sorted(set(target[1]) | set(cols))
        units.sort(key=lambda u: min(u[1]))
        return cls(tuple(u[0] for u in units), tuple(tuple(u[1]) for u in units), len(names))

    @classmethod
    def from_lists(cls, names: Sequence[str], columns: Sequence[Sequence[int]], n_columns: int) -> "FeatureGroups":
        return cls(tuple(map(str, names)), tuple(tuple(int(c) for c in cols) for cols in columns), int(n_columns))

    # ------------------------------------------------------------------- views
    @property
    def n_groups(self) -> int:
        return len(self.names)

    @property
    def trivial(self) -> bool:
        """True when every group is a single column in column order (no grouping at all)."""
        return self.n_groups == self.n_columns and all(c == (j,) for j, c in enumerate(self.columns))

    def column_group(self) -> np.ndarray:
        """Group index of each column."""
        out = np.empty(self.n_columns, dtype=np.int64)
        for g, cols in enumerate(self.columns):
            out[list(cols)] = g
        return out

    def expand(self, groups: Sequence[int]) -> list[int]:
        """Column indices of the given groups, in group order."""
        return [c for g in groups for c in self.columns[int(g)]]

    def aggregate(self, column_scores: np.ndarray, how: str = "max") -> np.ndarray:
        """Per-group score from per-column scores: ``"max"`` (filters) or ``"sum"`` (SHAP)."""
        scores = np.asarray(column_scores, dtype=np.float64)
        if scores.shape != (self.n_columns,):
            raise ValueError(f"column_scores must have shape ({self.n_columns},), got {scores.shape}.")
        reduce = {"max": np.max, "sum": np.sum}[how]
        return np.array([reduce(scores[list(cols)]) for cols in self.columns])

    def restricted_to(self, keep: Sequence[int]) -> "FeatureGroups":
        """The groups after keeping only columns ``keep`` (renumbered); emptied groups disappear."""
        new_index = {int(old): new for new, old in enumerate(keep)}
        units = [(n, tuple(new_index[c] for c in cols if c in new_index)) for n, cols in zip(self.names, self.columns)]
        units = [u for u in units if u[1]]
        return FeatureGroups(tuple(u[0] for u in units), tuple(u[1] for u in units), len(new_index))

    def describe(self, limit: int = 12) -> str:
        """The groups of several columns, as the pages name them: "day (4 columns), ash (2 columns) …"."""
        multi = [f"{name} ({len(cols)} columns)" for name, cols in zip(self.names, self.columns) if len(cols) > 1]
        return ", ".join(multi[:limit]) + (" …" if len(multi) > limit else "")

    def to_dict(self) -> dict[str, list[int]]:
        return {name: list(cols) for name, cols in zip(self.names, self.columns)}


def groups_of(dataset) -> FeatureGroups:
    """The data set's groups, or one group per column."""
    groups = getattr(dataset, "groups", None)
    return groups if groups is not None else FeatureGroups.singletons(dataset.feature_names)
