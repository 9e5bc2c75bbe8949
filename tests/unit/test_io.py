"""load_table: every format loads the same numbers; every bad input gives an actionable DataError."""
from __future__ import annotations

import io
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from seqattn.data import limits
from seqattn.data import DataError
from seqattn.data import validate_k
from seqattn.data import h5ad as sh5
from seqattn.data.tables import list_columns, load_table

RNG = np.random.default_rng(0)
FEATURES = pd.DataFrame(RNG.normal(size=(30, 4)).round(4), columns=["g1", "g2", "g3", "g4"])
LABELS = np.array(["B", "T", "NK"] * 10)


def _frame() -> pd.DataFrame:
    frame = FEATURES.copy()
    frame["cell_type"] = LABELS
    return frame


def _write_h5ad(path, X, obs=None, var_names=None, layers=None) -> None:
    n, d = X.shape
    obs = obs if obs is not None else pd.DataFrame({"cell_type": pd.Categorical(LABELS[:n])})
    obs.index = [f"c{i}" for i in range(n)]
    var = pd.DataFrame(index=var_names if var_names is not None else [f"g{i + 1}" for i in range(d)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata warns about non-unique var names on purpose here
        anndata.AnnData(X=X, obs=obs, var=var, layers=layers or {}).write_h5ad(path)


def _assert_matches_frame(dataset) -> None:
    X = dataset.X.toarray() if sp.issparse(dataset.X) else dataset.X
    np.testing.assert_allclose(X, FEATURES.to_numpy(), rtol=1e-6)
    assert dataset.feature_names == ["g1", "g2", "g3", "g4"]
    assert dataset.task == "classification"
    assert dataset.class_names == ["B", "NK", "T"]
    assert [dataset.class_names[c] for c in dataset.y] == list(LABELS)


# ---------------------------------------------------------------- good inputs
@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "h5ad-dense", "h5ad-sparse"])
def test_each_format_loads_the_same_table(tmp_path, fmt):
    if fmt == "csv":
        path = tmp_path / "cells.csv"
        _frame().to_csv(path, index=False)
    elif fmt == "tsv":
        path = tmp_path / "cells.tsv"
        _frame().to_csv(path, sep="\t", index=False)
    elif fmt == "parquet":
        path = tmp_path / "cells.parquet"
        _frame().to_parquet(path, index=False)
    else:
        path = tmp_path / "cells.h5ad"
        X = FEATURES.to_numpy(dtype=np.float32)
        _write_h5ad(path, sp.csr_matrix(X) if fmt == "h5ad-sparse" else X)
    dataset = load_table(str(path), target="cell_type")  # a path string, as the CLI passes it
    _assert_matches_frame(dataset)
    assert sp.issparse(dataset.X) == (fmt == "h5ad-sparse")
    assert dataset.name == "cells"
    # the same bytes as an upload (file-like object carrying a name)
    upload = io.BytesIO(path.read_bytes())
    upload.name = path.name
    _assert_matches_frame(load_table(upload, target="cell_type"))


def test_format_comes_from_file_name_or_content():
    data = _frame().to_csv(index=False).encode()
    assert load_table(io.BytesIO(data), target="cell_type", file_name="x.csv").n_features == 4
    assert load_table(data, target="cell_type").n_features == 4  # no name: sniffed as text
    semicolons = _frame().to_csv(index=False, sep=";").encode()
    _assert_matches_frame(load_table(semicolons, target="cell_type", file_name="x.csv"))
    buffer = io.BytesIO()
    _frame().to_parquet(buffer, index=False)
    _assert_matches_frame(load_table(buffer.getvalue(), target="cell_type"))  # PAR1 magic


def test_regression_target_and_task_override(tmp_path):
    frame = FEATURES.copy()
    frame["age"] = RNG.normal(50, 10, size=30)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    dataset = load_table(path, target="age")
    assert dataset.task == "regression" and dataset.class_names is None
    np.testing.assert_allclose(dataset.y, frame["age"], rtol=1e-5)
    frame["grade"] = np.arange(30) % 3
    frame.to_csv(path, index=False)
    assert load_table(path, target="grade").task == "classification"
    assert load_table(path, target="grade", task="regression").task == "regression"


def test_h5ad_layer_and_obs_columns(tmp_path):
    path = tmp_path / "cells.h5ad"
    counts = RNG.poisson(2.0, size=(30, 4)).astype(np.float32) + 1
    _write_h5ad(path, FEATURES.to_numpy(dtype=np.float32), layers={"counts": sp.csr_matrix(counts)})
    dataset = load_table(path, target="cell_type", layer="counts")
    np.testing.assert_array_equal(dataset.X.toarray(), counts)
    info = list_columns(path)
    assert info == {"format": "h5ad", "columns": ["cell_type"], "layers": ["counts"], "shape": (30, 4)}
    csv_info = list_columns(_frame().to_csv(index=False).encode(), file_name="a.csv")
    assert csv_info["columns"] == ["g1", "g2", "g3", "g4", "cell_type"]


def test_all_zero_cells_are_dropped_with_a_note(tmp_path):
    X = RNG.poisson(1.0, size=(30, 4)).astype(np.float32) + 1
    X[[3, 7]] = 0
    path = tmp_path / "z.h5ad"
    _write_h5ad(path, sp.csr_matrix(X))
    dataset = load_table(path, target="cell_type")
    assert dataset.n_samples == 28
    assert any("2 cell(s) with all-zero counts" in note for note in dataset.extra["notes"])
    np.testing.assert_array_equal(dataset.X.toarray(), np.delete(X, [3, 7], axis=0))
    with pytest.raises(DataError, match="2 cell\\(s\\) have all-zero counts"):
        load_table(path, target="cell_type", drop_empty_cells=False)
    _write_h5ad(path, sp.csr_matrix(np.zeros((30, 4), dtype=np.float32)))
    with pytest.raises(DataError, match="Every cell .* all-zero counts"):
        load_table(path, target="cell_type")


def test_constant_genes_dropped_for_h5ad_but_rejected_for_tables(tmp_path):
    X = FEATURES.to_numpy(dtype=np.float32).copy()
    X[:, 1] = 0.0
    path = tmp_path / "c.h5ad"
    _write_h5ad(path, sp.csr_matrix(X))
    dataset = load_table(path, target="cell_type")
    assert dataset.feature_names == ["g1", "g3", "g4"]
    assert any("'g2'" in note for note in dataset.extra["notes"])
    frame = _frame()
    frame["g2"] = 5.0
    with pytest.raises(DataError, match="Constant feature column\\(s\\).*'g2'"):
        load_table(frame.to_csv(index=False).encode(), target="cell_type", file_name="c.csv")
    kept = load_table(frame.to_csv(index=False).encode(), target="cell_type", file_name="c.csv", drop_constant=True)
    assert kept.feature_names == ["g1", "g3", "g4"]


# ----------------------------------------------------------------- bad inputs
def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_unsupported_extension_and_binary_junk():
    with pytest.raises(DataError, match="Unsupported file type '.docx'.*CSV, TSV, Excel \\(.xlsx\\), parquet or h5ad"):
        load_table(b"PK\x03\x04junk", target="y", file_name="table.docx")
    with pytest.raises(DataError, match=r"^Could not read 'table.xlsx' as an Excel workbook \(damaged"):
        load_table(b"PK\x03\x04junk", target="y", file_name="table.xlsx")
    junk = bytes(RNG.integers(0, 256, size=4000, dtype=np.uint8))
    with pytest.raises(DataError, match="binary data"):
        load_table(junk, target="y", file_name="table.csv")
    with pytest.raises(DataError, match="Cannot tell the format"):
        load_table(b"\x00\x01\x02" * 100, target="y", file_name="noext")


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty \\(0 bytes\\)"):
        load_table(empty, target="y")
    with pytest.raises(DataError, match="header .* but no data rows"):
        load_table(b"a,b,y\n", target="y", file_name="h.csv")
    with pytest.raises(DataError, match="first line is empty"):
        load_table(b"\n\n\n", target="y", file_name="blank.csv")
    with pytest.raises(DataError, match="File not found"):
        load_table(tmp_path / "nope.csv", target="y")


def test_missing_target_lists_columns():
    with pytest.raises(DataError) as err:
        load_table(_csv(_frame()), target="celltype", file_name="a.csv")
    message = str(err.value)
    assert "'celltype' not found" in message and "'g1', 'g2', 'g3', 'g4', 'cell_type'" in message
    with pytest.raises(DataError, match="Choose the target column"):
        load_table(_csv(_frame()), file_name="a.csv")


def test_text_columns_are_one_hot_groups_and_unusable_text_is_named():
    frame = _frame()
    frame["donor"] = ["d1", "d2"] * 15
    frame["batch"] = ["x"] * 30  # one level: a constant one-hot column, named as such
    with pytest.raises(DataError, match="Constant feature column.*'batch=x'"):
        load_table(_csv(frame), target="cell_type", file_name="a.csv")
    ds = load_table(_csv(frame.drop(columns="batch")), target="cell_type", file_name="a.csv")
    assert ds.feature_names[-2:] == ["donor=d1", "donor=d2"]
    assert ds.groups.names[-1] == "donor" and ds.groups.columns[-1] == (ds.n_features - 2, ds.n_features - 1)
    frame["batch"] = [f"b{i}" for i in range(30)]
    frame["dose"] = ["1.5"] * 29 + ["high"]
    with pytest.raises(DataError, match="Non-numeric feature columns: 'batch', 'dose'.*numbers mixed with text"):
        load_table(_csv(frame), target="cell_type", file_name="a.csv")


def test_nan_and_inf_are_counted_per_column():
    frame = _frame()
    frame.loc[[0, 4, 9], "g2"] = np.nan
    frame.loc[5, "g4"] = np.inf
    with pytest.raises(DataError) as err:
        load_table(_csv(frame), target="cell_type", file_name="a.csv")
    assert "2 feature column(s): 'g2' (3), 'g4' (1)" in str(err.value)


def test_nan_in_sparse_h5ad(tmp_path):
    X = sp.csr_matrix(FEATURES.to_numpy(dtype=np.float32))
    X.data[0] = np.nan
    path = tmp_path / "n.h5ad"
    _write_h5ad(path, X)
    with pytest.raises(DataError, match="NaN/inf.*'g1' \\(1\\)"):
        load_table(path, target="cell_type")


def test_duplicate_names(tmp_path):
    data = b"a,b,a,y\n1,2,3,x\n4,5,6,z\n7,8,9,x\n"
    with pytest.raises(DataError, match="Duplicate column names: 'a'"):
        load_table(data, target="y", file_name="d.csv")
    path = tmp_path / "d.h5ad"
    _write_h5ad(path, FEATURES.to_numpy(dtype=np.float32), var_names=["TP53", "CD3E", "TP53", "MS4A1"])
    with pytest.raises(DataError, match="Duplicate gene names: 'TP53'.*var_names_make_unique"):
        load_table(path, target="cell_type")


def test_single_class_and_missing_target_values():
    frame = _frame()
    frame["cell_type"] = "T"
    with pytest.raises(DataError, match="single class \\('T'\\)"):
        load_table(_csv(frame), target="cell_type", file_name="a.csv")
    frame = _frame()
    frame.loc[[1, 2], "cell_type"] = np.nan
    with pytest.raises(DataError, match="missing in 2 row"):
        load_table(_csv(frame), target="cell_type", file_name="a.csv")


def test_validate_k():
    assert validate_k(3, 10) == 3
    with pytest.raises(DataError, match="≥ 1"):
        validate_k(0, 10)
    with pytest.raises(DataError, match="k=11 is larger than the number of features \\(10\\)"):
        validate_k(11, 10)
    with pytest.raises(DataError, match="whole number"):
        validate_k(2.5, 10)


def test_renamed_and_damaged_binary_files(tmp_path):
    fake_parquet = tmp_path / "x.parquet"
    fake_parquet.write_bytes(_csv(_frame()))
    with pytest.raises(DataError, match="not a parquet file.*renamed"):
        load_table(fake_parquet, target="cell_type")
    fake_h5ad = tmp_path / "x.h5ad"
    fake_h5ad.write_bytes(_csv(_frame()))
    with pytest.raises(DataError, match="not an h5ad file \\(not HDF5\\)"):
        load_table(fake_h5ad, target="cell_type")
    good = tmp_path / "good.h5ad"
    _write_h5ad(good, FEATURES.to_numpy(dtype=np.float32))
    truncated = tmp_path / "cut.h5ad"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="Could not read 'cut.h5ad' as h5ad"):
        load_table(truncated, target="cell_type")
    buffer = io.BytesIO()
    _frame().to_parquet(buffer, index=False)
    with pytest.raises(DataError, match="Could not read 'cut.parquet' as parquet"):
        load_table(buffer.getvalue()[:200], target="cell_type", file_name="cut.parquet")


def test_wrong_obs_key_and_layer(tmp_path):
    path = tmp_path / "cells.h5ad"
    obs = pd.DataFrame({"cell_type": pd.Categorical(LABELS), "donor": ["a", "b"] * 15})
    _write_h5ad(path, FEATURES.to_numpy(dtype=np.float32), obs=obs)
    with pytest.raises(DataError, match="obs column 'celltype' not found.*'cell_type', 'donor'"):
        load_table(path, target="celltype")
    with pytest.raises(DataError, match="Layer 'counts' not found.*none \\(only X\\)"):
        load_table(path, target="cell_type", layer="counts")
    with pytest.raises(DataError, match="only applies to h5ad"):
        load_table(_csv(_frame()), target="cell_type", file_name="a.csv", layer="counts")


def test_non_numeric_layer(tmp_path):
    path = tmp_path / "s.h5ad"
    _write_h5ad(path, FEATURES.to_numpy(dtype=np.float32),
                layers={"labels": np.full((30, 4), "x", dtype=object)})
    with pytest.raises(DataError, match="layer 'labels' is not numeric"):
        load_table(path, target="cell_type", layer="labels")


def test_size_guards(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_DENSE_VALUES", 100)
    with pytest.raises(DataError, match="30 rows × 4 features = 120 values exceeds the in-memory limit of 100"):
        load_table(_csv(_frame()), target="cell_type", file_name="a.csv")
    dense = tmp_path / "dense.h5ad"
    _write_h5ad(dense, FEATURES.to_numpy(dtype=np.float32))
    with pytest.raises(DataError, match="dense 30 × 4 matrix.*sparse"):
        load_table(dense, target="cell_type")
    monkeypatch.setattr(sh5, "MAX_SPARSE_NONZEROS", 50)
    sparse = tmp_path / "sparse.h5ad"
    _write_h5ad(sparse, sp.csr_matrix(FEATURES.to_numpy(dtype=np.float32)))
    with pytest.raises(DataError, match="stores 120 non-zero values.*limit of 50"):
        load_table(sparse, target="cell_type")
    monkeypatch.setattr(limits, "MAX_TABLE_FILE_BYTES", 500)
    with pytest.raises(DataError, match="'a.csv' is .* bytes; tables above 500 bytes are not loaded"):
        load_table(_csv(_frame()), target="cell_type", file_name="a.csv")


def test_row_identifier_first_column_is_not_a_feature(tmp_path):
    frame = _frame()
    frame.index = [f"AAAC{i:04d}-1" for i in range(30)]  # cell barcodes as row names
    path = tmp_path / "cells.csv"
    frame.to_csv(path)  # index written as an unnamed first column
    dataset = load_table(path, target="cell_type")
    _assert_matches_frame(dataset)
    assert any("row identifiers" in note for note in dataset.extra["notes"])
    named = frame.reset_index(names="barcode")
    _assert_matches_frame(load_table(_csv(named), target="cell_type", file_name="b.csv"))
    # a repeated text column is data, not identifiers: it becomes a one-hot group
    named["barcode"] = ["x", "y", "z"] * 10
    grouped = load_table(_csv(named), target="cell_type", file_name="b.csv")
    assert grouped.groups.names[0] == "barcode" and grouped.feature_names[:3] == ["barcode=x", "barcode=y", "barcode=z"]


def test_gzipped_and_latin1_csv():
    import gzip

    frame = _frame()
    _assert_matches_frame(load_table(gzip.compress(_csv(frame)), target="cell_type", file_name="a.csv.gz"))
    latin = frame.rename(columns={"cell_type": "type_é"})
    data = latin.to_csv(index=False).encode("latin-1")
    assert load_table(data, target="type_é", file_name="l.csv").class_names == ["B", "NK", "T"]


@pytest.mark.parametrize("layer", [None, "counts", "raw"])
def test_h5ad_reads_only_the_selection_and_matches_anndata(tmp_path, monkeypatch, layer):
    """X (or the chosen layer / raw), the target column and the gene names: nothing else is read (obsm,
    obsp, uns, other obs columns), and the data set equals the one made from anndata's full read."""
    from anndata import io as anndata_io

    from seqattn.anndata_api import dataset_from_anndata

    rng = np.random.default_rng(3)
    n, d = 40, 6
    X = sp.csr_matrix(rng.poisson(1.5, size=(n, d)).astype(np.float32) + np.eye(n, d, dtype=np.float32))
    obs = pd.DataFrame({"cell_type": pd.Categorical(["B", "T", "NK", "B"] * (n // 4)),
                        "donor": [f"d{i % 3}" for i in range(n)]}, index=[f"c{i}" for i in range(n)])
    adata = anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(d)]),
                            layers={"counts": X * 2}, obsm={"X_pca": rng.normal(size=(n, 3))},
                            obsp={"distances": sp.random(n, n, density=0.1, format="csr", random_state=0)},
                            uns={"note": "kept on disk"})
    adata.raw = anndata.AnnData(X=X * 3, obs=obs, var=pd.DataFrame(index=[f"r{j}" for j in range(d)]))
    path = tmp_path / "full.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(path)
    read: list[str] = []
    real = anndata_io.read_elem
    monkeypatch.setattr(anndata_io, "read_elem", lambda elem, *a, **k: read.append(elem.name) or real(elem, *a, **k))
    dataset = load_table(path, "cell_type", layer=layer)
    matrix = {None: "/X", "counts": "/layers/counts", "raw": "/raw/X"}[layer]
    names = "/raw/var/_index" if layer == "raw" else "/var/_index"
    assert sorted(read) == sorted([matrix, "/obs/cell_type", names])
    expected = dataset_from_anndata(adata, "cell_type", layer="counts" if layer == "counts" else None,
                                    use_raw=layer == "raw")
    assert dataset.feature_names == expected.feature_names and dataset.class_names == expected.class_names
    np.testing.assert_array_equal(dataset.y, expected.y)
    np.testing.assert_array_equal(dataset.X.toarray(), expected.X.toarray())
