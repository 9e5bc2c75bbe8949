"""Command line: ``python -m seqattn datasets`` and ``python -m seqattn select ...``.

Bad input exits with status 2 and one line on stderr saying what to fix.
``--backed`` leaves an .h5ad matrix on disk (SA streams it in row chunks);
``torchrun --nproc_per_node N -m seqattn select ...`` trains SA on N processes
(DistributedDataParallel), and only rank 0 shows progress and writes ``--out``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

EXIT_BAD_INPUT = 2


class _CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seqattn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list the built-in data sets")
    sel = sub.add_parser("select", help="run a feature-selection method and write its trace")
    sel.add_argument("--data", required=True, help="built-in name or a .csv/.tsv/.xlsx/.parquet/.h5ad path")
    sel.add_argument("--target", help="target column (obs column for .h5ad); required for files")
    sel.add_argument("-k", type=int, required=True, help="number of features to pick")
    from seqattn.data.encoding import IMPUTE_CHOICES
    from seqattn.selectors import REGISTRY
    from seqattn.selectors.defaults import CLASS_WEIGHTS, COVERAGE_RULES, COVERAGE_SCORES, SA_MODELS

    sel.add_argument("--method", default="sa", help=", ".join(REGISTRY))
    sel.add_argument("--seed", type=int, default=0)
    sel.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    sel.add_argument("--epochs", type=int, help="SA training epochs (default: automatic)")
    sel.add_argument("--model", choices=list(SA_MODELS), help="SA model (default mlp)")
    sel.add_argument("--layer", help=".h5ad matrix: a layer's name, 'raw' or 'X' (default: .raw when the file "
                     "stores it, as select_features and scanpy's marker tools read, else X)")
    sel.add_argument("--backed", action="store_true",
                     help=".h5ad only: keep the matrix on disk and stream row chunks (method sa)")
    sel.add_argument("--batch-size", type=int, help="SA global mini-batch size (default: automatic)")
    sel.add_argument("--impute", choices=list(IMPUTE_CHOICES),
                     help="fill missing feature values (adds a '<column> (missing)' indicator to its group), "
                          "or drop_rows: leave out every row with a missing value")
    sel.add_argument("--drop", action="append", default=[], help="table column to leave out (repeatable)")
    sel.add_argument("--group", action="append", default=[], metavar="NAME=COL1,COL2,...",
                     help="select these columns as one unit named NAME (repeatable; e.g. a gene set)")
    sel.add_argument("--log1p", action="store_true", help="log1p-transform counts first")
    sel.add_argument("--top-genes", type=int, help="keep the N most variable features first")
    sel.add_argument("--standardize", action="store_true", help="per-feature standardisation first")
    sel.add_argument("--pin", action="append", default=[], help="feature name to keep selected (repeatable)")
    sel.add_argument("--ban", action="append", default=[], help="feature name never to select (repeatable)")
    sel.add_argument("--ban-mt", action="store_true", help="ban mitochondrial (MT-) genes")
    sel.add_argument("--ban-ribo", action="store_true", help="ban ribosomal protein (RPS/RPL) genes")
    sel.add_argument("--min-fraction", type=float, default=0.0,
                     help="expression floor: ban genes non-zero in fewer than this share of cells (0: off)")
    sel.add_argument("--min-mean", type=float, default=0.0,
                     help="expression floor: ban genes whose mean expression is below this (0: off)")
    sel.add_argument("--runs", type=int, help="SA runs combined into one stable selection (default: the gene-panel "
                                              "default for expression data — 16 up to k = 50, else 8 — else 1)")
    sel.add_argument("--class-weight", choices=[w or "none" for w in CLASS_WEIGHTS],
                     help="SA: 'balanced' weighs every class equally in the loss (default: the gene-panel default "
                          "for expression data, else none)")
    sel.add_argument("--structure-weight", type=float,
                     help="SA: weight λ of the head reconstructing the leading principal components (0: none); "
                          "with a coverage rule, λ / (1 + λ) of the picks are also made for that structure")
    sel.add_argument("--marker-pool", type=int,
                     help="SA: candidates = the m·k-gene per-type t-test marker panel (0: all genes; default: the "
                          "gene-panel default for expression data, else 0)")
    sel.add_argument("--coverage", choices=list(COVERAGE_RULES),
                     help="SA's pick rule: 'none' (the largest attention), 'turns' / 'worst' (each pick for the "
                          "worst-served cell type, from its markers; needs a marker pool; default: the gene-panel "
                          "default for expression data, else none)")
    sel.add_argument("--coverage-score", choices=list(COVERAGE_SCORES),
                     help="how the coverage rule measures each type's served-ness on the validation cells "
                          "(default: the gene-panel default for expression data, else recall)")
    sel.add_argument("--out", required=True, help="output file: .json (full trace) or .csv (picks)")
    sel.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _load(args: argparse.Namespace):
    from seqattn.data.builtins import BUILTIN_DATASETS, load_builtin
    from seqattn.data.tables import load_table

    if args.data in BUILTIN_DATASETS:
        if args.impute or args.drop:
            raise _CliError("--impute and --drop apply to table files, not to built-in data sets.")
        dataset = load_builtin(args.data)
        return dataset.with_groups(_groups(args.group)) if args.group else dataset
    path = Path(args.data)
    if not path.exists():
        raise _CliError(f"--data {args.data!r} is neither a built-in ({', '.join(BUILTIN_DATASETS)}) nor a file.")
    if not args.target and path.suffix.lower() != ".h5ad":
        raise _CliError("--target is required for table files: name the column to predict.")
    if args.backed and path.suffix.lower() != ".h5ad":
        raise _CliError("--backed applies to .h5ad files only.")
    layer = _h5ad_layer(path, args.layer) if path.suffix.lower() == ".h5ad" else args.layer
    dataset = load_table(str(path), target=args.target, layer=layer, impute=args.impute,
                         drop_columns=args.drop, groups=_groups(args.group), backed=args.backed)
    if path.suffix.lower() == ".h5ad" and args.layer is None:
        print(f"reading {dataset.extra.get('matrix', 'X')} of {path.name} (--layer chooses another matrix)",
              file=sys.stderr)
    return dataset


def _h5ad_layer(path: Path, given: str | None) -> str | None:
    """The h5ad matrix to read: ``--layer`` as given (``X`` for X), else ``.raw`` when the file stores it —
    what :func:`seqattn.select_features`, the app's upload and scanpy's marker tools read first."""
    if given is not None:
        return None if given == "X" else given
    from seqattn.data.h5ad import default_layer, h5ad_header
    from seqattn.data.sources import open_source

    return default_layer(list(h5ad_header(open_source(str(path), None))["layers"]))


def _check_out(out: Path, given: str) -> None:
    """Refuse an --out that cannot be written before any computation (not after minutes of it)."""
    if out.is_dir():
        raise _CliError(f"--out {given!r} is a folder; give a file name in it, e.g. {str(out / 'picks.json')!r}.")
    if out.suffix.lower() not in (".json", ".csv"):
        raise _CliError(f"--out must end in .json or .csv, got {given!r}.")
    if out.exists() and not out.is_file():
        raise _CliError(f"--out {given!r} exists and is not a regular file; give a file name ending in .json or .csv.")
    folder = out.absolute().parent
    while not folder.exists():  # missing folders are created when the result is written
        folder = folder.parent
    if not folder.is_dir():
        raise _CliError(f"--out {given!r}: {str(folder)!r} is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _CliError(f"--out {given!r}: cannot write in {str(folder)!r} (permission denied).")


def _check_numbers(args: argparse.Namespace, world_size: int) -> None:
    """Numeric options, checked with the flag's own name before the library sees them."""
    if args.epochs is not None and args.epochs < 1:
        raise _CliError("--epochs must be a positive integer.")
    if args.batch_size is not None and args.batch_size // world_size < 2:
        per_process = f" per process ({world_size} processes)" if world_size > 1 else ""
        raise _CliError(f"--batch-size must give at least 2 rows{per_process}: batch normalisation needs two rows "
                        f"to compute a spread; got {args.batch_size}.")
    if not 0 <= args.seed < 2**32:
        raise _CliError(f"--seed must be a whole number from 0 to 4294967295, got {args.seed}.")
    if args.runs is not None and args.runs < 1:
        raise _CliError(f"--runs must be a positive integer (1: one run), got {args.runs}.")
    if args.marker_pool is not None and args.marker_pool < 0:
        raise _CliError(f"--marker-pool must be a whole number ≥ 0 (0: every gene is a candidate), got {args.marker_pool}.")
    if args.structure_weight is not None and not args.structure_weight >= 0:
        raise _CliError(f"--structure-weight must be a number ≥ 0, got {args.structure_weight}.")
    if args.top_genes is not None and args.top_genes < 1:
        raise _CliError(f"--top-genes must be a positive integer (the number of most variable features to keep), "
                        f"got {args.top_genes}.")


def _groups(specs: list[str]) -> dict[str, list[str]]:
    """``NAME=a,b,c`` -> ``{NAME: [a, b, c]}``."""
    groups: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, members = spec.partition("=")
        columns = [c.strip() for c in members.split(",") if c.strip()]
        if not sep or not name.strip() or not columns:
            raise _CliError(f"--group {spec!r}: write NAME=COLUMN1,COLUMN2,...")
        if name.strip() in groups:
            raise _CliError(f"--group {name.strip()!r} is given twice.")
        groups[name.strip()] = columns
    return groups


def _select(args: argparse.Namespace) -> int:
    from seqattn import distributed
    from seqattn.device import resolve_device

    created = distributed.init_from_env(resolve_device(args.device))
    try:
        return _select_on_this_rank(args)
    finally:
        if created:
            distributed.shutdown()


def _select_on_this_rank(args: argparse.Namespace) -> int:
    from seqattn import distributed
    from seqattn.data import attach_preprocessing
    from seqattn.progress import progress_bar
    from seqattn.selectors import available_methods, run_method

    out = Path(args.out)
    _check_out(out, args.out)
    methods = available_methods()
    if args.method not in methods:
        raise _CliError(f"--method {args.method!r} is unknown; choose one of {', '.join(methods)}.")
    _check_numbers(args, distributed.world_size())
    if distributed.world_size() > 1 and args.method != "sa":
        raise _CliError(f"Several processes train SA only; run --method {args.method} as one process.")
    dataset, preprocessed = _load_and_preprocess(args)
    pinned, banned = _pins_and_bans(args, dataset)
    options = _sa_options(args, dataset) if args.method == "sa" else {}
    if pinned or banned:
        options.update(pinned=pinned, banned=banned)

    bar_on = not args.quiet and distributed.is_rank_zero()
    with progress_bar(args.method, enabled=bar_on, file=sys.stderr, notebook=False) as progress:
        trace = run_method(dataset, args.method, args.k, device=args.device, random_state=args.seed,
                           callback=progress, **options)
    if preprocessed:
        attach_preprocessing(trace.settings, dataset)
    if not distributed.is_rank_zero():
        return 0
    _write(trace, out, args.method)
    return 0


def _load_and_preprocess(args: argparse.Namespace):
    """The data set, after --log1p/--top-genes/--standardize; and whether any of them ran."""
    from seqattn.genomics import preprocess

    dataset = _load(args)
    for warning in dataset.extra.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    if not (args.log1p or args.top_genes is not None or args.standardize):
        return dataset, False
    if dataset.groups is not None:
        raise _CliError("--log1p/--top-genes/--standardize do not keep feature groups; preprocess the data "
                        "before grouping, or drop --group.")
    dataset, record = preprocess(dataset, log1p=args.log1p, top_genes=args.top_genes, standardize=args.standardize)
    return dataset, bool(record)


def _pins_and_bans(args: argparse.Namespace, dataset) -> tuple[list[int], list[int]]:
    """--pin/--ban (features or feature groups), --ban-mt/--ban-ribo and the expression floor, as unit indices."""
    from seqattn.data.groups import groups_of
    from seqattn.genomics import (check_floor_room, expression_floor, genes_to_indices, mitochondrial_genes,
                                  ribosomal_genes)

    units = list(groups_of(dataset).names)  # pins and bans name features, or feature groups
    pinned = genes_to_indices(units, args.pin) if args.pin else []
    banned = genes_to_indices(units, args.ban) if args.ban else []
    if args.ban_mt:
        banned = sorted(set(banned) | set(mitochondrial_genes(units)))
    if args.ban_ribo:
        banned = sorted(set(banned) | set(ribosomal_genes(units)))
    if args.min_fraction or args.min_mean:
        if dataset.groups is not None:
            raise _CliError("--min-fraction/--min-mean apply to single genes, not to --group units.")
        floor, message = expression_floor(dataset, min_fraction=args.min_fraction, min_mean=args.min_mean)
        banned = sorted(set(banned) | (set(floor) - set(pinned)))
        print(message, file=sys.stderr)
        check_floor_room(message, len(units) - len(pinned) - len(banned), args.k)
    return pinned, banned


def _sa_options(args: argparse.Namespace, dataset) -> dict:
    """SA's options: the gene-panel defaults for cell types in expression data, under the flags given."""
    from seqattn.genomics import gene_panel_applies
    from seqattn.selectors.defaults import panel_defaults

    chosen = {"epochs": args.epochs, "model": args.model, "batch_size": args.batch_size, "n_runs": args.runs,
              "structure_weight": args.structure_weight, "marker_pool": args.marker_pool,
              "coverage": args.coverage, "coverage_score": args.coverage_score, "class_weight": args.class_weight}
    chosen = {k: v for k, v in chosen.items() if v is not None}
    options = panel_defaults(dataset, chosen, args.k) if gene_panel_applies(dataset) else chosen
    if options.get("class_weight") == "none":
        options["class_weight"] = None
    return options


def _write(trace, out: Path, method: str) -> None:
    """Rank 0: the trace to --out (.json: all of it; .csv: the picks), a one-line summary, SA's pick warnings."""
    from seqattn.evaluation.narrative import pick_warnings

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        trace.to_json(out, indent=1)
    else:
        trace.to_csv(out)
    print(f"{trace.k} features by {method} → {out}: {', '.join(trace.selected_names[:10])}"
          + (" …" if trace.k > 10 else ""))
    if method == "sa":  # other methods' scores are not attention weights: no near-tie verdict for them
        for line in pick_warnings(trace):
            print(f"warning: {line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from seqattn.data import DataError

    args = _parser().parse_args(argv)
    try:
        if args.command == "datasets":
            from seqattn.data.builtins import BUILTIN_DATASETS

            for name, (_, description) in BUILTIN_DATASETS.items():
                print(f"{name:16s} {description}")
            return 0
        return _select(args)
    except (_CliError, DataError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
