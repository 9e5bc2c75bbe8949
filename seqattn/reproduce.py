"""From an app run to a notebook: :func:`reproduction_notebook` writes an ``.ipynb`` that
reruns a selection with the same data source, preprocessing, settings and seed.

The notebook uses only the public API (``seqattn.load_builtin`` /
``seqattn.load_table``, ``seqattn.genomics.preprocess``, ``seqattn.run_method``)
and ends by comparing its picks with the app's. On the CPU the same data,
settings and seed give the same picks (README, *Determinism*). Uploads are
not embedded: the notebook names the file and leaves its path to fill in.
"""
from __future__ import annotations

import json
import re
from typing import Any

from seqattn.data import Dataset
from seqattn.safe_text import escape_markdown
from seqattn.trace import SelectionTrace

#: SA settings recorded in the trace that are not passed back: the pick count, pins and bans
#: and the seed are written out separately; a wall-clock limit would make the picks depend on speed.
_NOT_REPLAYED = {"n_features_to_select", "pinned", "banned", "random_state", "device", "max_seconds"}
_SUFFIX = {"csv": ".csv", "tsv": ".tsv", "xlsx": ".xlsx", "parquet": ".parquet", "h5ad": ".h5ad", "table": ".csv"}


def _sa_options(trace: SelectionTrace) -> dict[str, Any]:
    """The selector parameters recorded in ``trace.settings`` (whatever the selector declares). Several runs
    record how they were combined as ``combine`` (older traces as ``shared``: :attr:`SelectionTrace.combine`)."""
    from seqattn.selectors.sequential_attention import SequentialAttentionSelector

    accepted = set(SequentialAttentionSelector().get_params()) - _NOT_REPLAYED
    options = {name: value for name, value in trace.settings.items() if name in accepted}
    if trace.combine is not None:
        options["combine"] = trace.combine
    return options


def _layer_of(dataset: Dataset) -> str | None:
    """``extra["matrix"]`` is ``X``, ``raw`` or ``layer 'name'`` (what the h5ad loader records)."""
    matrix = str(dataset.extra.get("matrix", "X"))
    if matrix == "raw":
        return "raw"
    match = re.fullmatch(r"layer '(.*)'", matrix)
    return match.group(1) if match else None


def _loading_code(dataset: Dataset, builtin: str | None) -> tuple[str, str]:
    """(markdown, code) that load the data set the app used."""
    if builtin:
        return (f"The built-in data set **{escape_markdown(builtin)}** ships with seqattn.",
                f"dataset = seqattn.load_builtin({builtin!r})")
    fmt = str(dataset.extra.get("source_format", "table"))
    path = f"PATH/TO/{dataset.name}{_SUFFIX.get(fmt, '.csv')}"
    arguments = [repr(path), f"target={dataset.extra.get('target_column')!r}", f"task={dataset.task!r}"]
    layer = _layer_of(dataset)
    if layer:
        arguments.append(f"layer={layer!r}")
    if dataset.extra.get("impute"):  # the Data page's missing-value and drop-column choices
        arguments.append(f"impute={dataset.extra['impute']!r}")
    if dataset.extra.get("dropped_columns"):
        arguments.append(f"drop_columns={list(dataset.extra['dropped_columns'])!r}")
    notes = " ".join(str(n) for n in dataset.extra.get("notes", []) if "Preprocessing" not in str(n))
    markdown = ("The app ran on an **uploaded file**: put its path below (it is not embedded in this notebook)."
                + (f" The app noted: {escape_markdown(notes)}" if notes else ""))
    return markdown, "UPLOAD = " + arguments[0] + "  # the file you uploaded\n" \
        + "dataset = seqattn.load_table(UPLOAD, " + ", ".join(arguments[1:]) + ")"


def _cell(kind: str, source: str, index: int) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "id": f"cell-{index}", "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _notebook(cells: list[tuple[str, str]], metadata: dict[str, Any]) -> str:
    notebook = {
        "cells": [_cell(kind, source, i) for i, (kind, source) in enumerate(cells)],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}, "seqattn": metadata},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1, ensure_ascii=False)


def _data_cells(title: str, what: str, dataset: Dataset, record: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Title (markdown, already escaped), then the cells that load the data set and replay its preprocessing."""
    import seqattn

    load_md, load_code = _loading_code(dataset, dataset.extra.get("builtin"))
    cells = [("markdown",
              f"# {title}\n\nWritten by seqattn {seqattn.__version__} from {what} in the app: the same data "
              "source, preprocessing, settings and seeds. On the CPU the same inputs give the same picks; on a "
              "GPU, near-ties can flip (README, *Determinism*).\n\n" + load_md),
             ("code", "import seqattn\n\n" + load_code + "\ndataset")]
    if record:
        cells.append(("markdown", "The app's gene-expression preprocessing, in the same order: "
                                  "log1p → most variable genes → per-gene standardisation."))
        cells.append(("code", "from seqattn.genomics import preprocess\n\n"
                              f"dataset, record = preprocess(dataset, log1p={bool(record.get('log1p'))!r}, "
                              f"top_genes={record.get('top_genes')!r}, "
                              f"standardize={bool(record.get('standardize'))!r})\nrecord"))
    return cells


def _run_code(trace: SelectionTrace, variable: str, options: dict[str, Any] | None = None) -> str:
    """``variable = seqattn.run_method(...)`` with the trace's method, k, seed, device, pins, bans and options."""
    if options is None:
        options = _sa_options(trace) if trace.method == "sa" else {}
    k = int(trace.settings.get("k", trace.k)) if trace.method == "sa" else trace.k
    pinned = [trace.feature_names[i] for i in trace.pinned]
    banned = [trace.feature_names[i] for i in trace.banned]
    option_lines = "".join(f"    {name}={value!r},\n" for name, value in options.items())
    return (f"pinned = [dataset.feature_names.index(name) for name in {pinned!r}]\n"
            f"banned = [dataset.feature_names.index(name) for name in {banned!r}]\n"
            f"{variable} = seqattn.run_method(\n    dataset, {trace.method!r}, {k},\n"
            f"    device={trace.settings.get('requested_device', 'cpu')!r},\n"
            f"    random_state={trace.settings.get('random_state', 0)!r},\n"
            f"    pinned=pinned,\n    banned=banned,\n{option_lines})\n{variable}")


def reproduction_notebook(trace: SelectionTrace, dataset: Dataset, *, options: dict[str, Any] | None = None) -> str:
    """The ``.ipynb`` (JSON text) that reruns ``trace``'s selection on ``dataset``.

    A built-in data set (``dataset.extra["builtin"]``, set by ``load_builtin``)
    is reloaded by name; other data from a path placeholder to fill in. ``options`` are the method's options;
    by default, for SA, every selector parameter recorded in ``trace.settings``.
    Preprocessing recorded in ``trace.settings["preprocessing"]`` is replayed;
    pins and bans are written as feature names.
    """
    k = int(trace.settings.get("k", trace.k)) if trace.method == "sa" else trace.k
    title = f"Reproduce a seqattn run: {trace.method} on {trace.dataset or dataset.name}"
    cells = _data_cells(escape_markdown(title), "a run",
                        dataset, trace.settings.get("preprocessing") or dataset.extra.get("preprocessing"))
    cells.append(("markdown", "The run: the app's settings, pins and bans (by name) and seed."))
    cells.append(("code", _run_code(trace, "trace", options)))
    stopped = (f" The app run stopped after {trace.k} of {k} picks, so its picks are compared with the first "
               f"{trace.k} here." if trace.k < k else "")
    cells.append(("markdown", "The app's picks, for comparison." + stopped))
    cells.append(("code",
                  f"app_picks = {trace.selected_names!r}\n"
                  "same = trace.selected_names[:len(app_picks)] == app_picks\n"
                  "print('Same picks as the app: yes' if same else\n"
                  "      f'Different picks from the app: {trace.selected_names} vs {app_picks}')"))
    cells.append(("markdown", "The animation the app shows: scores per pick, marginal gains and validation metric."))
    cells.append(("code", "trace.plot(dataset)"))
    return _notebook(cells, {"method": trace.method, "dataset": trace.dataset or dataset.name})


def comparison_notebook(comparison: Any, dataset: Dataset) -> str:
    """The ``.ipynb`` that reruns a Compare-page comparison (:func:`seqattn.compare_methods`).

    The same methods, k, retraining sizes, seeds, evaluation model and method
    options; an SA run reused from the Sequential Attention page is rerun first
    with its own settings (as :func:`reproduction_notebook` does) and passed on
    as ``sa_trace``. Ends by comparing every method's picks with the app's.
    """
    settings = comparison.settings
    title = f"Reproduce a seqattn comparison on {comparison.dataset or dataset.name}"
    cells = _data_cells(escape_markdown(title), "a comparison", dataset, dataset.extra.get("preprocessing"))
    reused = comparison.traces.get("sa")
    sa_argument = ""
    if reused is not None and reused.settings.get("reused"):
        cells.append(("markdown", "The comparison reused the Sequential Attention page's run; rerun it first."))
        cells.append(("code", _run_code(reused, "sa_trace")))
        sa_argument = "    sa_trace=sa_trace,\n"
    arguments = {"ks": list(comparison.ks), "seeds": list(settings.get("seeds", [0])),
                 "eval_model": settings.get("eval_model"), "eval_epochs": settings.get("eval_epochs"),
                 "random_state": settings.get("random_state", 0), "device": settings.get("device", "cpu"),
                 "method_options": settings.get("method_options") or {}}
    lines = "".join(f"    {name}={value!r},\n" for name, value in arguments.items())
    methods = list(settings.get("methods", comparison.traces))
    cells.append(("markdown", "The comparison: each method picks k features, then a fresh model is retrained "
                              "on every method's top features for each size and seed."))
    cells.append(("code", f"comparison = seqattn.compare_methods(\n    dataset, {methods!r}, {comparison.k},\n"
                          f"{lines}{sa_argument})\ncomparison.rankings()"))
    app_picks = {method: trace.selected_names for method, trace in comparison.traces.items()}
    cells.append(("markdown", "The app's picks per method, for comparison."))
    cells.append(("code",
                  f"app_picks = {app_picks!r}\n"
                  "same = {m: comparison.traces[m].selected_names[:len(p)] == p\n"
                  "        for m, p in app_picks.items() if m in comparison.traces}\n"
                  "print('Same picks as the app: yes' if same and all(same.values()) else\n"
                  "      f'Different picks from the app for: {[m for m, ok in same.items() if not ok]}')"))
    cells.append(("markdown", "Accuracy against the number of features, as on the Compare page."))
    cells.append(("code", "from seqattn.plots.compare import accuracy_vs_k_figure\n\n"
                          "accuracy_vs_k_figure(comparison.accuracy)"))
    return _notebook(cells, {"comparison": methods, "dataset": comparison.dataset or dataset.name})
