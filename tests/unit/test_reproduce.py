"""From app run to notebook: the generated .ipynb reruns the selection and gets the same picks."""
from __future__ import annotations

import json

import anndata
import pytest

from tests.support.notebook_helpers import execute_notebook, outputs_text
from seqattn import compare_methods, load_builtin, load_table, run_method
from seqattn.genomics import preprocess
from seqattn.data.h5ad import save_h5ad
from seqattn.reproduce import comparison_notebook, reproduction_notebook


def _app_like_run(dataset, **settings):
    """What the Sequential Attention page runs (run_method with its settings and time limit)."""
    return run_method(dataset, "sa", settings.pop("k"), device="cpu", random_state=settings.pop("seed"),
                      max_seconds=1800, **settings)


def test_notebook_for_a_builtin_has_settings_pins_and_picks() -> None:
    wine = load_builtin("wine")
    trace = _app_like_run(wine, k=2, seed=3, epochs=8, hidden=16, learning_rate=0.01, model="mlp",
                          pinned=[wine.feature_names.index("proline")], banned=[0])
    nb = json.loads(reproduction_notebook(trace, wine))
    code = "\n".join(c["source"] for c in nb["cells"] if c["cell_type"] == "code")
    assert "seqattn.load_builtin('wine')" in code and "random_state=3" in code
    for fragment in ("epochs=8", "hidden=16", "learning_rate=0.01", "model='mlp'", "['proline']", "['alcohol']"):
        assert fragment in code, fragment
    assert "max_seconds" not in code and f"app_picks = {trace.selected_names!r}" in code
    assert nb["nbformat"] == 4 and all(c["outputs"] == [] for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.slow
def test_generated_notebooks_reproduce_the_app_picks(tmp_path) -> None:
    # a built-in with the page's settings
    digits = load_builtin("digits")
    trace = _app_like_run(digits, k=3, seed=0, epochs=4, hidden=67, learning_rate=3e-3, model="mlp",
                          pinned=[27], banned=[28])
    executed = execute_notebook(reproduction_notebook(trace, digits), cwd=tmp_path)
    assert "Same picks as the app: yes" in outputs_text(executed)
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for c in executed.cells
               for o in c.get("outputs", []))  # the animation rendered

    # an upload (h5ad with a layer) with preprocessing: the path placeholder is filled in
    base = load_builtin("pbmc68k_reduced")
    path = save_h5ad(base, tmp_path / "cells.h5ad", target_name="cell_type")
    adata = anndata.read_h5ad(path)
    adata.layers["counts"] = adata.X.expm1()  # the layer the "app" trains on
    adata.write_h5ad(path)
    upload = load_table(path, target="cell_type", layer="counts")
    upload.name = "cells"
    chosen, record = preprocess(upload, log1p=True, top_genes=60)
    trace = _app_like_run(chosen, k=2, seed=1, epochs=3, hidden=16, learning_rate=3e-3, model="linear",
                          pinned=[], banned=[])
    trace.settings["preprocessing"] = record  # as the page records it
    text = reproduction_notebook(trace, chosen)
    assert "UPLOAD = 'PATH/TO/cells.h5ad'" in text and "layer='counts'" in text and "top_genes=60" in text
    executed = execute_notebook(text.replace("PATH/TO/cells.h5ad", str(path)), cwd=tmp_path)
    assert "Same picks as the app: yes" in outputs_text(executed)


@pytest.mark.slow
def test_comparison_notebook_reruns_the_comparison_with_the_reused_sa_run(tmp_path) -> None:
    wine = load_builtin("wine")
    sa = _app_like_run(wine, k=2, seed=0, epochs=8, hidden=16, learning_rate=0.01, model="mlp",
                       pinned=[], banned=[wine.feature_names.index("proline")])
    result = compare_methods(wine, ["sa", "omp", "anova"], 2, ks=[1, 2], seeds=[0], eval_model="logistic",
                             random_state=0, device="cpu", sa_trace=sa,
                             method_options={"sa": {"epochs": 8}, "shap": {"n_background": 10}})
    assert result.traces["sa"].settings.get("reused")
    text = comparison_notebook(result, wine)
    assert "sa_trace = seqattn.run_method(" in text and "sa_trace=sa_trace" in text
    assert "['sa', 'omp', 'anova'], 2" in text and "eval_model='logistic'" in text
    executed = execute_notebook(text, cwd=tmp_path)
    assert "Same picks as the app: yes" in outputs_text(executed)


def test_notebook_markdown_escapes_the_file_name_and_notes() -> None:
    """An upload's name goes into the notebook's title: markup in it must stay text (issue 24 item 7)."""
    import io

    import numpy as np
    import pandas as pd

    from seqattn.safe_text import escape_markdown

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"]).assign(label=[0, 1] * 20)
    name = "![px](http://127.0.0.1:9/img)<a href='http://127.0.0.1:9/x'>x</a>"
    dataset = load_table(io.BytesIO(frame.to_csv(index=False).encode()), target="label", file_name=f"{name}.csv")
    dataset.extra["notes"] = ["<img src='http://127.0.0.1:9/n.png'> noted"]
    for notebook in (reproduction_notebook(run_method(dataset, "omp", 2), dataset),
                     comparison_notebook(compare_methods(dataset, ["omp"], 2, ks=[2], seeds=[0],
                                                         eval_model="logistic"), dataset)):
        markdown = [c["source"] for c in json.loads(notebook)["cells"] if c["cell_type"] == "markdown"]
        assert escape_markdown(dataset.name) in markdown[0].splitlines()[0]  # the title
        for source in markdown:
            assert source.count("[") == source.count("\\[") and source.count("<") == source.count("\\<")


def test_a_consensus_of_several_runs_is_rerun_as_one_not_as_a_shared_selection() -> None:
    """The app's default gene panel combines separate runs (``combine="runs"``, recorded so in the settings);
    the notebook must pass it back (the selector's own default is a shared selection, which picks differently)."""
    from seqattn.genomics import make_planted_counts
    from seqattn.reproduce import _sa_options
    from seqattn.selectors.defaults import panel_defaults

    counts = make_planted_counts(n_cells=240, n_genes=40, n_types=3, markers_per_type=3, random_state=0)
    options = panel_defaults(counts, {"epochs": 3, "n_runs": 3, "random_state": 0, "device": "cpu"}, 3)
    trace = run_method(counts, "sa", 3, **options)
    replayed = _sa_options(trace)
    assert replayed["combine"] == "runs" and replayed["n_runs"] == 3
    assert {name: replayed[name] for name in ("marker_pool", "class_weight", "coverage")} == \
        {name: options[name] for name in ("marker_pool", "class_weight", "coverage")}
    again = run_method(counts, "sa", 3, random_state=0, device="cpu", **replayed)
    assert again.selected_names == trace.selected_names and again.is_consensus
    assert "combine='runs'" in reproduction_notebook(trace, counts)


def test_a_trace_saved_before_combine_was_recorded_still_says_how_its_runs_were_combined() -> None:
    """Older saved traces record ``shared`` (True/False) where today's record the selector's ``combine``."""
    from seqattn.reproduce import _sa_options
    from seqattn.trace import SelectionTrace

    for shared, combine in ((True, "shared"), (False, "runs")):
        data = {"method": "sa", "feature_names": ["a", "b", "c"], "task": "classification", "steps": [],
                "settings": {"n_runs": 4, "shared": shared}}
        trace = SelectionTrace.from_dict(data)
        assert trace.combine == combine and trace.is_consensus == (combine == "runs")
        assert _sa_options(trace)["combine"] == combine
    one_run = SelectionTrace.from_dict({"method": "sa", "feature_names": ["a"], "task": "classification", "steps": [], "settings": {}})
    assert one_run.combine is None and not one_run.is_consensus
