"""benchmarks/bench_panels.py's wiring of spapros's own ProbesetEvaluator (issue 20): the cache, the CSV
the runner writes and the table built from it — without the external environment; the one real run of
the runner is skipped where that environment is absent."""
from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_panels_under_test", ROOT / "benchmarks" / "bench_panels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runner_csv(values: dict[str, dict[str, float]], wall: float) -> pd.DataFrame:
    """What ``external_panels.py evaluate`` writes: ``panel,metric,value`` rows and ``_run`` rows."""
    rows = [{"panel": p, "metric": m, "value": v} for p, metrics in values.items() for m, v in metrics.items()]
    rows += [{"panel": "_run", "metric": "wall_s", "value": wall}, {"panel": "_run", "metric": "n_cells", "value": 175}]
    return pd.DataFrame(rows)


def test_cached_evaluation_is_read_back_with_its_split_and_size(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "EXTERNAL_PYTHON", tmp_path / "no-such-python")  # nothing may run
    panels = {"SA": ["A", "B"], "t-test": ["B", "C"], "OMP": ["D", "E"]}
    assert bench.spapros_evaluation(None, "pbmc", "abc", 3, 20, panels) is None  # neither cached nor runnable
    # the key covers only the panels that go through the evaluator (OMP does not)
    path = bench.spapros_eval_path("pbmc", "abc", 3, 20, {"SA": ["A", "B"], "t-test": ["B", "C"]})
    runner_csv({"SA": {"knn_overlap mean_overlap_AUC": 0.4}, "t-test": {"knn_overlap mean_overlap_AUC": 0.5}},
               wall=12.0).to_csv(path, index=False)
    frame = bench.spapros_evaluation(None, "pbmc", "abc", 3, 20, panels)
    assert list(frame.columns) == ["dataset", "split", "size", "panel", "metric", "value"]
    assert set(frame["dataset"]) == {"pbmc"} and set(frame["split"]) == {3} and set(frame["size"]) == {20}
    assert frame.loc[frame["panel"] == "t-test", "value"].item() == pytest.approx(0.5)


def test_sa_variants_go_through_the_evaluator_and_its_report_in_table_order(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "EXTERNAL_PYTHON", tmp_path / "no-such-python")
    panels = {"HVG": ["A", "F"], "OMP": ["D", "E"], "t-test": ["B", "C"], "SA λ=3": ["A", "C"], "SA": ["A", "B"]}
    assert bench.spapros_eval_order(panels) == ["SA", "SA λ=3", "t-test", "HVG"]  # every variant, OMP left out
    scored = {"SA": ["A", "B"], "SA λ=3": ["A", "C"], "t-test": ["B", "C"], "HVG": ["A", "F"]}
    runner_csv({label: {"knn_overlap mean_overlap_AUC": 0.4 + 0.01 * i} for i, label in enumerate(scored)},
               wall=9.0).to_csv(bench.spapros_eval_path("pbmc", "abc", 5, 20, scored), index=False)
    frame = bench.spapros_evaluation(None, "pbmc", "abc", 5, 20, panels)  # read back: the variant was in the key
    assert frame.loc[frame["panel"] == "SA λ=3", "value"].item() == pytest.approx(0.41)
    text = bench.spapros_eval_report(frame)
    assert "| metric | SA | SA λ=3 | t-test | HVG |" in text and "OMP" not in text


def test_cache_key_follows_the_panels_and_the_settings(bench, monkeypatch):
    base = bench.spapros_eval_path("pbmc", "abc", 0, 20, {"SA": ["A", "B"]})
    assert bench.spapros_eval_path("pbmc", "abc", 0, 20, {"SA": ["A", "B"]}) == base
    assert bench.spapros_eval_path("pbmc", "abc", 0, 20, {"SA": ["A", "C"]}) != base  # a changed default panel
    assert bench.spapros_eval_path("pbmc", "abc", 1, 20, {"SA": ["A", "B"]}) != base
    monkeypatch.setitem(bench.SPAPROS_EVAL_SETTINGS, "forest_min_cells", 40)
    assert bench.spapros_eval_path("pbmc", "abc", 0, 20, {"SA": ["A", "B"]}) != base


def test_report_gives_mean_and_sd_over_splits_per_panel(bench, tmp_path, capsys):
    frames = []
    for split, (sa, spapros) in enumerate([(0.60, 0.62), (0.64, 0.66), (0.62, 0.70)]):
        frame = runner_csv({"SA": {"forest_clfs accuracy": sa, "gene_corr 1 - mean": 0.8},
                            "spapros": {"forest_clfs accuracy": spapros, "gene_corr 1 - mean": 0.7}},
                           wall=100.0 + split)
        frame.insert(0, "size", 20)
        frame.insert(0, "split", split)
        frame.insert(0, "dataset", "pbmc")
        frames.append(frame)
    one_split = runner_csv({"SA": {"forest_clfs accuracy": 0.5}}, wall=50.0)
    one_split.insert(0, "size", 50)
    one_split.insert(0, "split", 0)
    one_split.insert(0, "dataset", "pbmc")
    frames.append(one_split)
    path = tmp_path / "spapros_eval.csv"
    pd.concat(frames).to_csv(path, index=False)
    bench.main(["--report", str(path)])
    text = capsys.readouterr().out
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if "pbmc, 20 genes" in line)
    assert "SA 3, spapros 3" in lines[header]
    assert lines[header + 2] == "| metric | SA | spapros |"  # panels in the evaluator's order, no _run column
    forest = next(line for line in lines[header:] if line.startswith("| forest classification"))
    assert f"0.620 ± {np.std([0.60, 0.64, 0.62], ddof=1):.3f}" in forest
    assert f"0.660 ± {np.std([0.62, 0.66, 0.70], ddof=1):.3f}" in forest
    assert "median 101 s wall" in text
    small = text[text.index("pbmc, 50 genes"):]
    assert "0.500 (1 split)" in small and "spapros" not in small.splitlines()[2]


def test_report_keeps_the_panel_tables_apart_from_the_evaluator_tables(bench, tmp_path, capsys):
    panel_rows = pd.DataFrame([{"dataset": "pbmc", "split": s, "size": 20, "panel": "SA", "metric": m,
                                "cell_type": "", "value": v, "n_genes": 20, "seconds": 1.0, "cpu_seconds": 1.0}
                               for s in (0, 1) for m, v in (("balanced_accuracy_logreg", 0.6 + s / 10),)])
    panel_path, evaluator_path = tmp_path / "panels.csv", tmp_path / "evaluator.csv"
    panel_rows.to_csv(panel_path, index=False)
    evaluator = runner_csv({"SA": {"knn_overlap mean_overlap_AUC": 0.45}}, wall=10.0)
    evaluator.insert(0, "size", 20)
    evaluator.insert(0, "split", 0)
    evaluator.insert(0, "dataset", "pbmc")
    evaluator.to_csv(evaluator_path, index=False)
    bench.main(["--report", str(panel_path), str(evaluator_path)])
    text = capsys.readouterr().out
    assert "0.650 ± 0.071" in text  # the panel table: balanced accuracy over the two splits
    assert "spapros's evaluator, pbmc, 20 genes" in text and "| kNN overlap (AUC) | 0.450 (1 split) |" in text


@pytest.mark.slow
def test_runner_scores_panels_with_spapros_evaluator(bench, tmp_path):
    """The real ``external_panels.py evaluate`` on a small planted data set (needs the external venv)."""
    if not bench.external_available():
        pytest.skip(f"no external panel environment at {bench.EXTERNAL_PYTHON}")
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    types = np.repeat(["a", "b", "c"], 30)
    X = rng.poisson(1.0, size=(90, 30)).astype(np.float32)
    for t, name in enumerate("abc"):  # genes 0-2 mark a, 3-5 b, 6-8 c
        X[types == name, 3 * t:3 * t + 3] += 6
    X[:, 29] = 0  # a gene absent from these cells: spapros's own gene_corr fails on it (NaN correlations)
    genes = [f"g{j}" for j in range(30)]
    adata = ad.AnnData(X=sp.csr_matrix(np.log1p(X)), obs=pd.DataFrame({"cell_type": pd.Categorical(types)},
                                                                      index=[f"c{i}" for i in range(90)]),
                       var=pd.DataFrame(index=genes))
    adata.write_h5ad(tmp_path / "cells.h5ad")
    panels = {"markers": ["g0", "g3", "g6", "g1", "g4"], "noise": ["g20", "g21", "g22", "g23", "g29"]}
    (tmp_path / "panels.json").write_text(json.dumps(panels))
    (tmp_path / "markers.json").write_text(json.dumps({"a": ["g2"], "b": ["g5"], "c": ["g8"]}))
    subprocess.run([str(bench.EXTERNAL_PYTHON), str(bench.RUNNER), "evaluate", "--input", str(tmp_path / "cells.h5ad"),
                    "--target", "cell_type", "--panels", str(tmp_path / "panels.json"), "--markers",
                    str(tmp_path / "markers.json"), "--out", str(tmp_path / "out.csv"), "--n-jobs", "1",
                    "--forest-min-cells", "5", "--cluster-counts", "3", "6"], check=True, capture_output=True)
    out = pd.read_csv(tmp_path / "out.csv").set_index(["panel", "metric"])["value"]
    assert out[("markers", "forest_clfs accuracy")] > 0.9 > out[("noise", "forest_clfs accuracy")]
    assert out[("markers", "marker_corr per celltype")] > out[("noise", "marker_corr per celltype")]
    assert out[("markers", "cluster_similarity nmi_3_6")] > out[("noise", "cluster_similarity nmi_3_6")]
    assert np.isfinite(out[("noise", "gene_corr 1 - mean")])
    assert out[("_run", "n_cells")] == 90
