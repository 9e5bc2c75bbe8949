"""OMP speed: ``seqattn.selectors.omp.omp_select`` vs scikit-learn's ``orthogonal_mp``.

Three problems: dense 2000×500 with k = 50, dense 5000×2000 with k = 100 and a
sparse 5000×2000 (2% non-zeros) with k = 50 (scikit-learn gets the densified
copy: ``orthogonal_mp`` takes dense input only). Both sides solve the same
problem (raw X, no centring or scaling) and the script asserts identical picks.
Variants are interleaved round by round; medians and the ratio to
scikit-learn's default (and to its ``precompute=True`` Gram path) are printed
with the BLAS thread count and the load average.

    .venv/bin/python benchmarks/bench_omp.py [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seqattn.selectors.omp import omp_select, use_gram  # noqa: E402


def problems(seed: int = 0):
    rng = np.random.default_rng(seed)
    for n, d, k, density in ((2000, 500, 50, None), (5000, 2000, 100, None), (5000, 2000, 50, 0.02)):
        if density is None:
            X = rng.standard_normal((n, d))
        else:
            X = sp.random(n, d, density=density, random_state=seed, format="csr")
        true = rng.choice(d, k, replace=False)
        y = np.asarray(X[:, true] @ rng.standard_normal(k)).ravel() + 0.1 * rng.standard_normal(n)
        name = f"{n}×{d} k={k}" + (f" sparse {density:.0%}" if density else " dense")
        yield name, X, y, k


def sklearn_order(coef_path: np.ndarray) -> list[int]:
    order: list[int] = []
    for j in range(coef_path.shape[1]):
        order += [int(i) for i in np.flatnonzero(coef_path[:, j]) if i not in order]
    return order


def main() -> None:
    from sklearn.linear_model import orthogonal_mp
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"BLAS threads pinned to {args.threads}; load average before: {os.getloadavg()}")
    for name, X, y, k in problems():
        dense = X.toarray() if sp.issparse(X) else X
        ours = lambda pre: omp_select(X, y, k, task="regression", standardize=False,  # noqa: E731
                                      fit_intercept=False, precompute=pre)
        variants = {
            "sklearn orthogonal_mp": lambda: orthogonal_mp(dense, y, n_nonzero_coefs=k, return_path=True),
            "sklearn precompute=True": lambda: orthogonal_mp(dense, y, n_nonzero_coefs=k, precompute=True,
                                                             return_path=True),
            "omp_select auto": lambda: ours("auto"),
            "omp_select direct": lambda: ours(False),
            "omp_select Gram": lambda: ours(True),
        }
        times: dict[str, list[float]] = {v: [] for v in variants}
        picks = {}
        with threadpool_limits(args.threads):
            for _ in range(args.repeats):  # interleaved: each round runs every variant once
                for label, run in variants.items():
                    start = time.perf_counter()
                    result = run()
                    times[label].append(time.perf_counter() - start)
                    picks[label] = sklearn_order(result) if label.startswith("sklearn") else result.selected
        assert len({tuple(p) for p in picks.values()}) == 1, f"picks differ on {name}: {picks}"
        base = statistics.median(times["sklearn orthogonal_mp"])
        gram = statistics.median(times["sklearn precompute=True"])
        auto = "Gram" if use_gram(*X.shape, k, 1, sp.issparse(X)) else "direct"
        print(f"\n{name}  (identical picks; auto chose {auto}; load {os.getloadavg()[0]:.1f})")
        print(f"  {'variant':26s} {'median s':>9s} {'min–max s':>14s} {'÷ sklearn':>10s} {'÷ sk Gram':>10s}")
        for label, values in times.items():
            med = statistics.median(values)
            print(f"  {label:26s} {med:9.3f} {min(values):6.3f}–{max(values):<7.3f} {med / base:10.2f} "
                  f"{med / gram:10.2f}")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
