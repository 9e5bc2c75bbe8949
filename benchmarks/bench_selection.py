"""SA selection cost vs plain training, held-out accuracy vs other selectors, and vs SequentialFeatureSelector.

Measured side by side in one run, threads pinned:
0. ``--accuracy``: the held-out protocol. For each split, select on the
   training part only (SA with its defaults, greedy forward selection with
   true gains, OMP, SHAP; t-test markers on expression data), retrain a fresh
   MLP on the first k picks, score it on the held-out part; mean ± sd over
   the splits. Goal: SA within 1 point of greedy and ≥ OMP and SHAP.
1. SA's optimizer steps and seconds with its default (automatic) budget at
   k = 5, 10, 20 / plain training of the same MLP to convergence (validation
   loss without a 0.1% improvement for 20 checks of 10 steps; SA's warm-up
   hands over after 5), seeds interleaved, medians. Goal ≤ 1.3.
   SA's seconds / plain training for SA's own number of steps are printed too.
2. SA vs SequentialFeatureSelector(forward) with a comparable small MLP:
   wall time and test accuracy of a fresh MLP retrained on each subset.
   Target: ≥ 10× faster, accuracy within 1 point.

Run: .venv/bin/python benchmarks/bench_selection.py [--repeats 5] [--ks 5 10 20] [--skip-sfs]
     .venv/bin/python benchmarks/bench_selection.py --accuracy [--datasets digits breast_cancer] [--splits 5]
     .venv/bin/python benchmarks/bench_selection.py --per-type [--k 20] [--splits 5]
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


class _Rows:
    """Standardised rows of a dense data set as tensors, indexed per mini-batch (the benchmark's plain trainer)."""

    def __init__(self, X, y, mean: np.ndarray, scale: np.ndarray):
        self.X = torch.as_tensor(((np.asarray(X) - mean) / scale).astype(np.float32))
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.y)

    def get(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(rows)
        return self.X[index], self.y[index]


def _mean_scale(X) -> tuple[np.ndarray, np.ndarray]:
    from seqattn.data import safe_scale

    X = np.asarray(X, dtype=np.float64)
    return X.mean(axis=0), safe_scale(X.std(axis=0))


def plain_training_seconds(ds, selector_settings: dict, seed: int) -> float:
    """Train the same MLP for the same number of optimizer steps, without the attention mask."""
    from seqattn.data import split_indices
    from seqattn.models import build_model

    start = time.perf_counter()
    train_idx, _, _ = split_indices(ds.n_samples, ds.y, 0.2, 0.0, seed)
    X, y = ds.X[train_idx], ds.y[train_idx]
    mean, scale = _mean_scale(X)
    data = _Rows(X, y, mean, scale)
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


def plain_training_to_convergence(ds, selector_settings: dict, seed: int) -> tuple[float, int]:
    """Train the same MLP (all features, same split, seed, batch order and learning rate) until it has
    converged — :meth:`LossPlateau.converged`: the validation loss has not improved by 0.1% for 20 checks of
    10 steps — and return (seconds, optimizer steps). This is the baseline of SA's cost. SA's own warm-up is the
    same training, handed over to the phases after 5 such checks instead of 20."""
    from seqattn.data import split_indices
    from seqattn.models import build_model
    from seqattn.schedule import LossPlateau

    start = time.perf_counter()
    train_idx, val_idx, _ = split_indices(ds.n_samples, ds.y, 0.2, 0.0, seed)
    mean, scale = _mean_scale(ds.X[train_idx])
    data = _Rows(ds.X[train_idx], ds.y[train_idx], mean, scale)
    val = _Rows(ds.X[val_idx], ds.y[val_idx], mean, scale)
    torch.manual_seed(seed)
    net = build_model("mlp", ds.n_features, ds.n_classes, selector_settings["hidden"])
    optimizer = torch.optim.Adam(net.parameters(), lr=selector_settings["learning_rate"])
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    batch = selector_settings["batch_size"]
    per_epoch = max(1, len(train_idx) // batch)
    converged, step = LossPlateau.converged(), 0

    @torch.no_grad()
    def validation_loss() -> float:
        net.eval()
        xb, yb = val.get(np.arange(len(val)))
        loss = float(loss_fn(net(xb), yb))
        net.train()
        return loss

    done = False
    while not done:
        order = rng.permutation(len(train_idx))
        for b in range(per_epoch):
            xb, yb = data.get(order[b * batch:(b + 1) * batch])
            loss = loss_fn(net(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            done = converged.reached(step, validation_loss)
            if done:
                break
    return time.perf_counter() - start, step


def cost_vs_plain(part, ks: list[int], repeats: int, trace_k: int):
    """SA's default budget at every k in ``ks`` vs plain training of the same MLP to convergence, seeds
    0..repeats-1 interleaved (plain, then SA at each k without and with the read-out refits). Prints optimizer
    steps (load-independent) and seconds; the goal is SA ≤ 1.3× plain. Returns seed 0's trace at ``trace_k``
    (with read-outs) and the median seconds of SA with read-outs at that k."""
    from seqattn import SequentialAttentionSelector

    rows, kept = [], None
    for r in range(repeats):
        plain_s, plain_steps = None, None
        for k in ks:
            t = time.perf_counter()
            core = SequentialAttentionSelector(k, random_state=r, gain_model="none").fit_dataset(part)
            core_s = time.perf_counter() - t
            if plain_s is None:  # the same for every k: once per seed, between SA runs
                plain_s, plain_steps = plain_training_to_convergence(part, core.trace_.settings, r)
            t = time.perf_counter()
            full = SequentialAttentionSelector(k, random_state=r).fit_dataset(part)
            full_s = time.perf_counter() - t
            kept = full.trace_ if (r == 0 and k == trace_k) else kept
            settings = core.trace_.settings
            rows.append({"seed": r, "k": k, "sa_steps": settings["total_steps"], "warmup": settings["warmup_steps"],
                         "phases": settings["phase_steps"], "picks": settings["picks_per_phase"],
                         "plain_steps": plain_steps, "sa_s": core_s, "full_s": full_s, "plain_s": plain_s,
                         "same_s": plain_training_seconds(part, settings, r) if k == max(ks) else None})
        print(f"  seed {r} done, load {os.getloadavg()[0]:.1f}", flush=True)
    median = statistics.median
    print("k | SA steps (median) | plain steps (median) | SA/plain steps: median of per-seed ratios, ratio of "
          "medians | SA/plain seconds (no read-out, with read-out)")
    for k in ks:
        at_k = [row for row in rows if row["k"] == k]
        per_seed = [row["sa_steps"] / row["plain_steps"] for row in at_k]
        sa, plain = median([row["sa_steps"] for row in at_k]), median([row["plain_steps"] for row in at_k])
        seconds = median([row["plain_s"] for row in at_k])
        print(f"{k} | {sa:.0f} | {plain:.0f} | **{median(per_seed):.2f}** {[round(x, 2) for x in per_seed]}, "
              f"{sa / plain:.2f} | {median([row['sa_s'] for row in at_k]) / seconds:.2f}, "
              f"{median([row['full_s'] for row in at_k]) / seconds:.2f}")
    for row in rows:
        if row["seed"] == 0:
            print(f"  seed 0, k={row['k']}: {row['sa_steps']} steps = warm-up {row['warmup']} + phases {row['phases']}"
                  f" (picks per phase {row['picks']}); plain training to convergence {row['plain_steps']}")
    same = [row for row in rows if row["same_s"] is not None]
    print(f"per-step cost at k={max(ks)}: SA (no read-out) / plain MLP for SA's own number of steps "
          f"{median([row['sa_s'] for row in same]) / median([row['same_s'] for row in same]):.2f}")
    return kept, median([row["full_s"] for row in rows if row["k"] == trace_k])


def held_out_accuracy(names: list[str], ks: list[int], splits: int, methods: list[str], eval_epochs: int,
                      out: str | None = None) -> None:
    """Selection on the training part only; a fresh MLP on the first k picks; mean ± sd over the splits.
    With ``out``, the raw rows are (re)written there as CSV after every split."""
    import pandas as pd

    from seqattn import load_builtin
    from seqattn.data import dense_columns
    from seqattn.genomics import is_expression_data
    from seqattn.evaluation.retrain import fit_and_score, holdout
    from seqattn.models import TrainConfig
    from seqattn.selectors import run_method

    rows = []
    for name in names:
        ds = load_builtin(name)
        is_expression = is_expression_data(ds)
        chosen = methods + (["ttest"] if is_expression and "ttest" not in methods else [])
        for split in range(splits):
            train, test = holdout(ds, 0.25, random_state=split)
            for method in chosen:
                # greedy refits every candidate at every step: shortlist 100 by ANOVA F on wide data (as the app does)
                options = {"max_candidates": 100} if method == "greedy" and ds.n_features > 100 else {}
                trace = None
                for k in ks:  # SA's budget depends on k (its phases share it): one run per k; the others' first k
                    if trace is None or method == "sa":
                        t = time.perf_counter()
                        trace = run_method(train, method, k if method == "sa" else max(ks), device="cpu",
                                           random_state=split, **options)
                        seconds = time.perf_counter() - t
                    near_ties = sum(step.near_tie for step in trace.steps[:k]) if method == "sa" else None
                    features = list(trace.selected[:k])
                    acc = fit_and_score(dense_columns(train.X, features), train.y, dense_columns(test.X, features), test.y,
                                        ds.task, n_classes=ds.n_classes, model="mlp", seed=split,
                                        config=TrainConfig(epochs=eval_epochs), device="cpu")
                    rows.append({"dataset": name, "split": split, "method": method, "k": k, "accuracy": acc,
                                 "select_s": seconds, "near_ties": near_ties,
                                 "steps": trace.settings.get("total_steps") if method == "sa" else None})
            print(f"  {name} split {split} done, load {os.getloadavg()[0]:.1f}", flush=True)
            if out:
                pd.DataFrame(rows).to_csv(out, index=False)
    frame = pd.DataFrame(rows)
    table = frame.groupby(["dataset", "k", "method"])["accuracy"].agg(["mean", "std"]).mul(100).round(1)
    table["select_s"] = frame.groupby(["dataset", "k", "method"])["select_s"].median().round(1)
    print(table.to_string())
    sa = frame[frame.method == "sa"].groupby(["dataset", "k"])[["near_ties", "steps"]].median()
    print("SA per run (median over the splits): near-tie picks among its k, optimizer steps")
    print(sa.to_string())


def per_type_recall(name: str, k: int, splits: int) -> None:
    """Why a panel is more or less accurate: per-cell-type recall of SA's and the t-test's k-gene panels.

    Same held-out protocol as ``held_out_accuracy`` (selection on the training part only); a logistic
    regression on each standardised panel; recall per type on the held-out cells, mean over the splits;
    ``types_marked`` = cell types that hold the highest mean expression of at least one panel gene.
    """
    import pandas as pd
    from sklearn.metrics import recall_score

    from seqattn import load_builtin
    from seqattn.data import dense_columns
    from seqattn.evaluation.retrain import holdout
    from seqattn.genomics import panel_model, genes_by_marked_type, mean_expression_by_type
    from seqattn.selectors import run_method

    ds = load_builtin(name)
    rows = []
    for split in range(splits):
        train, test = holdout(ds, 0.25, random_state=split)
        for method in ("sa", "ttest"):
            picks = list(run_method(train, method, k, device="cpu", random_state=split).selected[:k])
            marked = genes_by_marked_type(mean_expression_by_type(train, picks))
            X_train, X_test = dense_columns(train.X, picks), dense_columns(test.X, picks)
            model = panel_model(X_train, train.y, max_iter=3000)  # the gene panel page's model
            recall = recall_score(test.y, model.predict(X_test), average=None,
                                  labels=list(range(ds.n_classes)), zero_division=0)
            rows.append({"method": method, "types_marked": marked["marks"].nunique(),
                         **dict(zip(ds.class_names, recall))})
    counts = np.bincount(ds.y, minlength=ds.n_classes)
    table = pd.DataFrame(rows).groupby("method").mean().T.round(2)
    table["cells"] = [np.nan] + list(counts)
    print(f"{name}, k={k}, {splits} held-out splits: recall per cell type (mean), types marked")
    print(table.to_string())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accuracy", action="store_true", help="run the held-out accuracy protocol and exit")
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer", "mnist_5k"])
    parser.add_argument("--ks", nargs="+", type=int, default=[5, 10, 20])
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=["sa", "greedy", "omp", "shap"])
    parser.add_argument("--eval-epochs", type=int, default=40)
    parser.add_argument("--out", help="CSV for the accuracy protocol's raw rows")
    parser.add_argument("--per-type", action="store_true",
                        help="per-cell-type recall of SA's and the t-test's panels on pbmc68k_reduced (k from --k)")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sfs-max-iter", type=int, default=60, help="MLP iterations per SFS candidate fit")
    parser.add_argument("--skip-sfs", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.per_type:
        per_type_recall("pbmc68k_reduced", args.k, args.splits)
        return
    if args.accuracy:
        print(f"held-out accuracy, torch threads={torch.get_num_threads()}, load average={os.getloadavg()[0]:.2f}")
        held_out_accuracy(args.datasets, args.ks, args.splits, args.methods, args.eval_epochs, args.out)
        return
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # SFS's short MLP fits

    from seqattn import SequentialAttentionSelector, load_builtin
    from seqattn.evaluation.retrain import fit_and_score, holdout
    from seqattn.models import TrainConfig

    ds = load_builtin("digits")
    select_part, test_part = holdout(ds, 0.25, random_state=0)
    print(f"digits {ds.n_samples}×{ds.n_features}, k={args.k}, torch threads={torch.get_num_threads()}, "
          f"load average={os.getloadavg()[0]:.2f}")

    # 1. SA (automatic budget) vs plain training of the same network to the same convergence criterion.
    sa_trace, m_full = cost_vs_plain(select_part, sorted(set(args.ks) | {args.k}), args.repeats, args.k)

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
                             "classification", n_classes=ds.n_classes, model="mlp", seed=0,
                             config=TrainConfig(epochs=60), device="cpu")

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
