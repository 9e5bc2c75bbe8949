"""SA selection cost vs plain training, and vs scikit-learn's SequentialFeatureSelector.

Measured side by side in one run on digits, k=20, threads pinned:
1. SA selection time / plain training time of the same MLP for the same
   optimizer steps (interleaved, repeated, medians). Target ≤ 1.3.
2. SA vs SequentialFeatureSelector(forward) with a comparable small MLP:
   wall time and test accuracy of a fresh MLP retrained on each subset.
   Target: ≥ 10× faster, accuracy within 1 point.

Run: .venv/bin/python benchmarks/bench_selection.py [--repeats 5] [--sfs-max-iter 60]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def plain_training_seconds(ds, selector_settings: dict, seed: int) -> float:
    """Train the same MLP for the same number of optimizer steps, without the attention mask."""
    from seqattn.data import split_indices
    from seqattn.models import build_model
    from seqattn.selectors.sequential_attention import _Batches, _standardisation

    start = time.perf_counter()
    train_idx, _, _ = split_indices(ds.n_samples, ds.y, 0.2, 0.0, seed)
    X, y = ds.X[train_idx], ds.y[train_idx]
    mean, scale = _standardisation(X)
    data = _Batches(X, y, mean, scale, torch.device("cpu"), torch.long)
    torch.manual_seed(seed)
    net = build_model("mlp", ds.n_features, ds.n_classes, selector_settings["hidden"])
    optimizer = torch.optim.Adam(net.parameters(), lr=selector_settings["learning_rate"])
    total = selector_settings["total_steps"]
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.1 ** (1 / total))
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    batch = selector_settings["batch_size"]
    per_epoch = max(1, len(train_idx) // batch)
    step = 0
    while step < total:
        order = rng.permutation(len(train_idx))
        for b in range(per_epoch):
            if step >= total:
                break
            xb, yb = data.get(order[b * batch:(b + 1) * batch])
            loss = loss_fn(net(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sfs-max-iter", type=int, default=60, help="MLP iterations per SFS candidate fit")
    parser.add_argument("--skip-sfs", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # SFS's short MLP fits

    from seqattn import SequentialAttentionSelector, load_builtin
    from seqattn.evaluation.retrain import fit_and_score, holdout

    ds = load_builtin("digits")
    select_part, test_part = holdout(ds, 0.25, random_state=0)
    print(f"digits {ds.n_samples}×{ds.n_features}, k={args.k}, torch threads={torch.get_num_threads()}, "
          f"load average={os.getloadavg()[0]:.2f}")

    # 1. SA vs plain training of the same network, interleaved.
    sa_core, sa_full, plain = [], [], []
    sa_trace = None
    for r in range(args.repeats):
        t = time.perf_counter()
        core = SequentialAttentionSelector(args.k, random_state=r, gain_model="none").fit_dataset(select_part)
        sa_core.append(time.perf_counter() - t)
        plain.append(plain_training_seconds(select_part, core.trace_.settings, r))
        t = time.perf_counter()
        full = SequentialAttentionSelector(args.k, random_state=r).fit_dataset(select_part)
        sa_full.append(time.perf_counter() - t)
        sa_trace = sa_trace or full.trace_
    settings = sa_trace.settings
    m_core, m_full, m_plain = map(statistics.median, (sa_core, sa_full, plain))
    print(f"optimizer steps: {settings['total_steps']} ({settings['epochs']} epochs, batch {settings['batch_size']})")
    print(f"plain MLP training      median {m_plain:.2f} s   runs {[round(x, 2) for x in plain]}")
    print(f"SA (no read-out)        median {m_core:.2f} s   ratio to plain {m_core / m_plain:.2f}")
    print(f"SA (+ per-step refits)  median {m_full:.2f} s   ratio to plain {m_full / m_plain:.2f}")

    # 1b. Threads: SA picks 1 CPU thread for small networks; check that choice side by side.
    one, two = [], []
    for r in range(args.repeats):
        for threads, bucket in ((1, one), (2, two)):
            t = time.perf_counter()
            SequentialAttentionSelector(args.k, random_state=r, gain_model="none",
                                        num_threads=threads).fit_dataset(select_part)
            bucket.append(time.perf_counter() - t)
    print(f"SA with 1 thread median {statistics.median(one):.2f} s, with 2 threads "
          f"{statistics.median(two):.2f} s (ratio 2/1 = {statistics.median(two) / statistics.median(one):.2f})")

    # 2. SA vs SequentialFeatureSelector with a comparable MLP; accuracy of a fresh MLP on the picks.
    def test_accuracy(features) -> float:
        return fit_and_score(select_part.X[:, features], select_part.y, test_part.X[:, features], test_part.y,
                             "classification", n_classes=ds.n_classes, model="mlp", seed=0, epochs=60,
                             device="cpu")

    sa_acc = test_accuracy(list(sa_trace.selected))
    all_acc = test_accuracy(list(range(ds.n_features)))
    print(f"test accuracy: all 64 features {all_acc:.3f}; SA k={args.k} {sa_acc:.3f}")
    if args.skip_sfs:
        return
    from sklearn.feature_selection import SequentialFeatureSelector
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(67,), max_iter=args.sfs_max_iter,
                                                        random_state=0))
    sfs = SequentialFeatureSelector(mlp, n_features_to_select=args.k, direction="forward", cv=3, n_jobs=1)
    t = time.perf_counter()
    sfs.fit(select_part.X, select_part.y)
    sfs_seconds = time.perf_counter() - t
    sfs_features = list(np.flatnonzero(sfs.get_support()))
    sfs_acc = test_accuracy(sfs_features)
    print(f"SequentialFeatureSelector(MLP 67, max_iter={args.sfs_max_iter}, cv=3): {sfs_seconds:.1f} s, "
          f"test accuracy {sfs_acc:.3f}")
    print(f"SA median {m_full:.1f} s → SA is {sfs_seconds / m_full:.1f}× faster; "
          f"accuracy difference SA − SFS = {100 * (sa_acc - sfs_acc):+.1f} points")


if __name__ == "__main__":
    main()
