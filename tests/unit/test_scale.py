"""Atlas scale: backed h5ad streaming, SA's memory, and data-parallel SA on torch.distributed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from seqattn.cli import main as cli_main
from seqattn.data import DataError, column_mean_var, make_planted
from seqattn.data.stream import BatchStream, MemoryRows, epoch_order, stream_mean_var
from seqattn.genomics import preprocess
from seqattn.data.h5ad_backed import write_planted_counts_h5ad
from seqattn.data.tables import load_table
from seqattn.selectors.sequential_attention import SequentialAttentionSelector, fit_dataset_distributed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def counts_file(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("scale") / "counts.h5ad"
    info = write_planted_counts_h5ad(path, 600, 150, n_types=3, markers_per_type=3, chunk_cells=170,
                                     random_state=3)
    return path, info


def test_backed_and_in_memory_find_the_same_markers(counts_file):
    path, info = counts_file
    memory = load_table(path, "cell_type")
    backed = load_table(path, "cell_type", backed=True)
    assert backed.backed and not memory.backed
    assert backed.feature_names == memory.feature_names and np.array_equal(backed.y, memory.y)
    # preprocessing on the backed view (log1p per block, HVG by a streaming pass) selects the same genes
    memory, _ = preprocess(memory, log1p=True, top_genes=100)
    backed, _ = preprocess(backed, log1p=True, top_genes=100)
    assert backed.feature_names == memory.feature_names
    # Float rounding differs between the two layouts (streamed vs whole-matrix statistics), which moves the
    # warm-up's stopping point; the 9 planted markers then tie for the lead within a few steps, so which marker
    # of a type comes first may differ. What must hold on both: the picks are markers, of every cell type.
    markers = {backed.feature_names.index(f"GENE{j:05d}"): cell_type
               for cell_type, genes in info["markers_by_type"].items() for j in genes
               if f"GENE{j:05d}" in backed.feature_names}
    for data in (memory, backed):
        picks = SequentialAttentionSelector(4, chunk_rows=128, random_state=0).fit_dataset(data).selected_features_
        found = [markers[g] for g in picks.tolist() if g in markers]
        assert len(found) >= 3 and set(found) == set(info["markers_by_type"]), (data.backed, picks, markers)


def test_streamed_statistics_match_whole_matrix(counts_file):
    path, _ = counts_file
    backed = load_table(path, "cell_type", backed=True)
    memory = load_table(path, "cell_type")
    rows = np.arange(5, 590, 3)
    for got, want in zip(stream_mean_var(backed.X, rows, chunk_rows=37), column_mean_var(memory.X, rows)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    block = backed.X.read(np.array([7, 3, 400]))
    np.testing.assert_array_equal(block.toarray(), memory.X[[7, 3, 400]].toarray())


@pytest.mark.parametrize("dense", [False, True])
def test_scattered_rows_are_read_in_bounded_spans(tmp_path, monkeypatch, dense):
    """Rows spread over the file (read-out, check rows) come back exact, in the order asked, repeats
    included, while no single read covers more than CHUNK_BYTES of disk rows (the span between the
    first and last row asked for used to be read whole: memory grew with the file)."""
    import anndata

    import seqattn.data.stream as stream

    path = tmp_path / "x.h5ad"
    write_planted_counts_h5ad(path, 900, 40, n_types=3, markers_per_type=2, dense=dense, chunk_cells=300,
                              random_state=1)
    X = anndata.read_h5ad(path).X
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    backed = stream.BackedRows(path)
    spans: list[int] = []
    read_raw = stream.BackedRows.read_raw
    monkeypatch.setattr(stream.BackedRows, "read_raw",
                        lambda self, start, stop: spans.append(stop - start) or read_raw(self, start, stop))
    monkeypatch.setattr(stream, "CHUNK_BYTES", 50 * backed._disk_row_bytes())  # 50 disk rows per read
    rng = np.random.default_rng(0)
    for rows in (rng.choice(900, 120, replace=False),  # scattered, shuffled
                 np.sort(rng.choice(900, 300, replace=False)),  # scattered, sorted
                 np.array([5, 800, 5, 3, 800]),  # repeats
                 np.arange(10, 40)[::-1]):  # one short span, reversed
        spans.clear()
        block = backed.read(rows)
        np.testing.assert_array_equal(block.toarray() if sp.issparse(block) else block, X[rows])
        assert max(spans) <= max(50, 2 * len(rows)), spans
    spans.clear()
    block = backed.to_memory(np.arange(0, 900, 7))
    np.testing.assert_array_equal(block.toarray() if sp.issparse(block) else block, X[::7])
    assert max(spans) <= 50


def test_chunked_order_visits_every_row_once_chunk_by_chunk():
    rows = np.random.default_rng(0).permutation(100)[:70]
    order, chunk_of = epoch_order(rows, 16, np.random.default_rng(1))
    assert sorted(order) == sorted(rows)
    for c in np.unique(chunk_of):  # each chunk is a contiguous run of the sorted rows, visited in one go
        members = np.sort(order[chunk_of == c])
        assert np.array_equal(members, np.sort(rows)[c * 16:(c + 1) * 16])
        assert np.all(np.diff(np.flatnonzero(chunk_of == c)) == 1)
    plain, _ = epoch_order(rows, 1000, np.random.default_rng(1))  # one chunk: the old plain shuffle
    assert np.array_equal(plain, rows[np.random.default_rng(1).permutation(70)])


@pytest.mark.parametrize("kind", ["dense", "sparse", "backed"])
def test_rank_shards_rebuild_the_global_batches(kind, tmp_path):
    """Two ranks' per-rank batches, side by side, are the single process's global batches."""
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, size=(90, 6)).astype(np.float32)
    if kind == "backed":
        import anndata

        anndata.AnnData(X=sp.csr_matrix(X)).write_h5ad(tmp_path / "x.h5ad")
        from seqattn.data.stream import BackedRows

        source = BackedRows(tmp_path / "x.h5ad")
    else:
        source = MemoryRows(sp.csr_matrix(X) if kind == "sparse" else X)
    y = np.arange(90)
    rows = np.arange(3, 90)
    mean, scale = np.zeros(6, np.float32), np.ones(6, np.float32)

    def batches(rank: int, world: int) -> list:
        stream = BatchStream(source, rows, y, mean, scale, batch_size=20, device=torch.device("cpu"),
                             target_dtype=torch.long, chunk_rows=25, rank=rank, world_size=world)
        return list(stream.epoch(np.random.default_rng(5)))

    single, first, second = batches(0, 1), batches(0, 2), batches(1, 2)
    assert len(single) == len(first) == len(second) == 87 // 20
    for whole, a, b in zip(single, first, second):
        assert torch.equal(whole[0], torch.cat([a[0], b[0]])) and torch.equal(whole[1], torch.cat([a[1], b[1]]))
        assert torch.equal(whole[0], torch.as_tensor(X[whole[1].numpy()]))  # rows and targets stay paired
    if kind == "backed":  # and the backed stream gives the in-memory stream's batches
        memory = BatchStream(MemoryRows(X), rows, y, mean, scale, batch_size=20, device=torch.device("cpu"),
                             target_dtype=torch.long, chunk_rows=25)
        for a, b in zip(single, memory.epoch(np.random.default_rng(5))):
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        BatchStream(source, rows, y, mean, scale, batch_size=21, device=torch.device("cpu"),
                    target_dtype=torch.long, world_size=2)


def test_truncated_or_corrupt_h5ad_in_backed_mode_is_a_clear_error(counts_file, tmp_path):
    path, _ = counts_file
    data = path.read_bytes()
    truncated = tmp_path / "truncated.h5ad"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="damaged or truncated"):
        load_table(truncated, "cell_type", backed=True)
    corrupt = tmp_path / "corrupt.h5ad"
    corrupt.write_bytes(data)
    with h5py.File(corrupt, "a") as f:  # row pointers running past the stored values
        indptr = f["X/indptr"][...]
        f["X/indptr"][len(indptr) // 2:] = indptr[-1] * 10
    with pytest.raises(DataError, match="damaged or truncated"):
        load_table(corrupt, "cell_type", backed=True)
    with pytest.raises(DataError, match="needs an .h5ad"):
        load_table(b"a,b\n1,2\n", "a", file_name="t.csv", backed=True)
    with pytest.raises(DataError, match="file path"):
        load_table(data, "cell_type", file_name="x.h5ad", backed=True)


def test_backed_data_set_only_runs_sa(counts_file, tmp_path, capsys):
    path, _ = counts_file
    code = cli_main(["select", "--data", str(path), "--target", "cell_type", "-k", "2", "--backed",
                     "--method", "omp", "--out", str(tmp_path / "o.json"), "--quiet"])
    assert code == 2 and "needs the matrix in memory" in capsys.readouterr().err


def _json_from_child(script: str) -> dict:
    """Run ``script`` in a fresh Python (this checkout first on the path, one thread): its last line as JSON."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _backed_fit_in_child(path: Path) -> dict:
    """Load backed and fit SA in a fresh process; peak RSS growth (MB) of each stage, via Linux's VmHWM."""
    script = textwrap.dedent(f"""
        import json, re
        def peak_since_reset():
            status = open("/proc/self/status").read()
            hwm = int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) / 1024
            return hwm
        def rss():
            return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
        def reset():
            open("/proc/self/clear_refs", "w").write("5")  # peak RSS := current RSS
        from seqattn.data.tables import load_table
        from seqattn.selectors.sequential_attention import SequentialAttentionSelector, fit_dataset_distributed
        reset(); start = rss()
        data = load_table({str(path)!r}, "cell_type", backed=True)
        load = peak_since_reset() - start
        reset(); start = rss()
        selector = SequentialAttentionSelector(2, epochs=1, chunk_rows=250, gain_model="none",
                                               device="cpu", random_state=0).fit_dataset(data)
        fit = peak_since_reset() - start
        print(json.dumps({{"load": load, "fit": fit, "picks": selector.selected_features_.tolist()}}))
    """)
    return _json_from_child(script)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's peak-RSS reset")
def test_backed_fit_peak_memory_stays_below_bound_on_a_larger_file(tmp_path):
    """Peak RSS growth of a backed load and of a backed fit each ≤ 200 MB on a 400 MB dense matrix.

    The bound follows the documented formula: load = one 32 MB chunk (read, finiteness mask,
    min/max); fit = a 250-row chunk (5 MB, read and indexed), a 64-row batch (1.3 MB × ~5
    activations), 16·d·(h+2) ≈ 5.5 MB of model state, 20,000-row index/target arrays — plus
    torch's own first-use allocations (60–80 MB measured). The file never enters memory.
    """
    bound_mb = 200.0
    path = tmp_path / "big.h5ad"
    info = write_planted_counts_h5ad(path, 20_000, 5_000, n_types=4, markers_per_type=3, dense=True,
                                     chunk_cells=1000, random_state=0)
    assert info["bytes"] > 1.9 * bound_mb * 2**20
    result = _backed_fit_in_child(path)
    assert result["load"] < bound_mb and result["fit"] < bound_mb, result
    assert len(result["picks"]) == 2


def _backed_peaks_in_child(path: Path, chunk_mb: int, readout_val_rows: int) -> dict:
    """Backed load, then SA's default fit (automatic budget, read-out on), in a fresh process: its peak
    RSS (Linux VmHWM, MB) after the load and after the fit, for a fixed chunk size and read-out cap.

    The caps are set on the modules that read them and checked to exist there (a cap set on a module
    that no longer reads it changes nothing and measures something else); the rows each read-out
    really holds and the chunk size are reported so the caller can check the caps took effect.
    """
    script = textwrap.dedent(f"""
        import json, re
        def peak():
            return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
        import seqattn.data.stream as stream
        import seqattn.selectors.sa_trainer as trainer
        import seqattn.selectors.sequential_attention as sa
        from seqattn.data.tables import load_table
        assert hasattr(stream, "CHUNK_BYTES") and hasattr(trainer, "MAX_READOUT_VAL_ROWS")
        stream.CHUNK_BYTES = {chunk_mb} << 20
        trainer.MAX_READOUT_VAL_ROWS = {readout_val_rows}
        readout_rows, init = [], stream.ReadoutRows.__init__
        def counting_init(self, source, rows):
            readout_rows.append(len(rows))
            init(self, source, rows)
        stream.ReadoutRows.__init__ = counting_init
        data = load_table({str(path)!r}, "cell_type", backed=True)
        load = peak()
        selector = sa.SequentialAttentionSelector(2, device="cpu", random_state=0).fit_dataset(data)
        print(json.dumps({{"load": load, "fit": peak(), "picks": selector.selected_features_.tolist(),
                          "readout_rows": readout_rows, "chunk_rows": selector.trace_.settings["chunk_rows"]}}))
    """)
    return _json_from_child(script)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's peak RSS (VmHWM)")
def test_backed_peak_memory_does_not_grow_with_the_cells(tmp_path):
    """4× the cells (10,000 → 40,000 × 2,000 genes, CSR 17 → 67 MB), same chunk size: the peak RSS of a
    backed load and of SA's default fit grow by less than a quarter of the data's growth.

    Measured: +1.2–3.5 MB (load) and +2.4–6.2 MB (fit) here over four runs; the code before this test
    read every span of disk rows between the first and last read-out or check row, +57 MB for the fit.
    The read-out's validation rows are capped at MAX_READOUT_VAL_ROWS (10,000); the cap is lowered to
    1,500 so that both sizes are past it, as atlases are, and checked to have taken effect: set on a
    module that no longer read it, the read-out held 2,000 → 8,000 validation rows (20 % of the cells)
    and the fit grew 13.7–16.5 MB. 4 MB chunks so that both sizes are several chunks.
    """
    sizes, peaks, data_mb = (10_000, 40_000), [], []
    for n_cells in sizes:
        path = tmp_path / f"cells_{n_cells}.h5ad"
        info = write_planted_counts_h5ad(path, n_cells, 2_000, n_types=4, markers_per_type=3, random_state=0)
        data_mb.append(info["nnz"] * 8 / 2**20)  # CSR: float32 value + int32 column index per stored entry
        peaks.append(_backed_peaks_in_child(path, chunk_mb=4, readout_val_rows=1_500))
        path.unlink()
        assert peaks[-1]["readout_rows"] == [5_000, 1_500], peaks[-1]  # both sizes past both read-out caps
        assert peaks[-1]["chunk_rows"] < n_cells / 3, peaks[-1]  # several chunks (~2,400 rows)
    allowed = 0.25 * (data_mb[1] - data_mb[0])
    assert allowed > 10, data_mb
    for stage in ("load", "fit"):
        growth = peaks[1][stage] - peaks[0][stage]
        assert growth < allowed, (stage, growth, allowed, peaks)


@pytest.mark.slow
def test_two_gloo_processes_pick_what_one_process_picks():
    data = make_planted(400, 20, 3, random_state=0)
    params = dict(random_state=0, batch_size=64, chunk_rows=100, gain_model="linear", min_steps_per_phase=10)
    one = SequentialAttentionSelector(3, **params).fit_dataset(data)
    two = fit_dataset_distributed(SequentialAttentionSelector(3, **params), data, 2)  # checks ranks agree
    assert two.selected_features_.tolist() == one.selected_features_.tolist()
    assert set(one.selected_features_) == set(data.informative)
    assert two.trace_.settings["world_size"] == 2 and one.trace_.settings["world_size"] == 1
    np.testing.assert_allclose(two.trace_.steps[0].scores, one.trace_.steps[0].scores, rtol=1e-4, atol=1e-6)
    assert [s.val_metric for s in two.trace_.steps] == [s.val_metric for s in one.trace_.steps]


def test_automatic_thread_rule():
    from seqattn.selectors.sequential_attention import auto_threads

    assert auto_threads(20_000, 67, cpu_count=2) == 1  # measured: 2 threads 2–5.5× slower on 2 cores
    assert auto_threads(100, 67, cpu_count=64) == 1  # small network
    assert auto_threads(20_000, 67, world_size=2, cpu_count=64) == 1  # processes share the cores
    assert auto_threads(20_000, 67, cpu_count=64) is None  # many cores: torch's default


def test_server_files_stay_inside_the_allowed_folder(tmp_path, monkeypatch, counts_file):
    from seqattn.server_files import (SERVER_DATA_ENV, allowed_folder, list_server_files, load_server_file,
                                      resolve_server_path)

    monkeypatch.delenv(SERVER_DATA_ENV, raising=False)
    assert allowed_folder() is None  # off by default
    folder, outside = tmp_path / "allowed", tmp_path / "secret"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "private.csv").write_text("a,b\n1,2\n")
    (folder / "sub" / "cells.h5ad").write_bytes(counts_file[0].read_bytes())
    (folder / "escape.csv").symlink_to(outside / "private.csv")
    (folder / "inside_link.h5ad").symlink_to(folder / "sub" / "cells.h5ad")
    monkeypatch.setenv(SERVER_DATA_ENV, str(folder))
    root = allowed_folder()
    assert root == folder.resolve()
    for bad in ("../secret/private.csv", "sub/../../secret/private.csv", str(outside / "private.csv"),
                "escape.csv", "missing.h5ad", "sub", "", "/etc/passwd"):
        with pytest.raises(DataError):
            resolve_server_path(bad, root)
    assert resolve_server_path("sub/cells.h5ad", root) == (folder / "sub" / "cells.h5ad").resolve()
    assert resolve_server_path(str(folder / "inside_link.h5ad"), root).name == "cells.h5ad"
    assert list_server_files(root) == ["inside_link.h5ad", "sub/cells.h5ad"]  # the escaping link is hidden
    dataset = load_server_file("sub/cells.h5ad", root, "cell_type")
    assert dataset.n_samples == 600 and not dataset.backed  # small: in memory
    monkeypatch.setattr("seqattn.server_files.BACKED_FROM_BYTES", 1)
    assert load_server_file("sub/cells.h5ad", root, "cell_type").backed  # large: backed
    monkeypatch.delenv(SERVER_DATA_ENV)
    assert allowed_folder({"server_data_dir": str(folder)}) == root  # or a Streamlit secret
