"""Everyday tables, written by the tests as people save them: Excel, ';' with decimal commas,
BOMs and UTF-16, text columns, missing values, leaks and ID-like targets."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqattn.cli import main as cli_main
from seqattn.data import DataError
from seqattn.data.guards import leak_warnings, target_warnings
from seqattn.data.tables import list_columns, load_table

RNG = np.random.default_rng(16)


def _frame(n: int = 60) -> pd.DataFrame:
    frame = pd.DataFrame({
        "height": RNG.normal(170, 10, n).round(2),
        "weight": RNG.normal(70, 8, n).round(3),
        "ratio": RNG.uniform(0, 1, n).round(4),
        "colour": RNG.choice(["red", "green", "blue"], n),
    })
    frame["label"] = np.where(frame["height"] > 170, "tall", "short")
    return frame


def _twins(frame: pd.DataFrame, tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in
             ("plain.csv", "european.csv", "bom.csv", "utf16.csv", "utf16.tsv", "sheet.xlsx")}
    frame.to_csv(paths["plain.csv"], index=False)
    frame.to_csv(paths["european.csv"], index=False, sep=";", decimal=",")
    frame.to_csv(paths["bom.csv"], index=False, encoding="utf-8-sig")
    frame.to_csv(paths["utf16.csv"], index=False, encoding="utf-16")
    frame.to_csv(paths["utf16.tsv"], index=False, sep="\t", encoding="utf-16")
    with pd.ExcelWriter(paths["sheet.xlsx"], engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="data", index=False)
        frame.head(3).to_excel(writer, sheet_name="notes", index=False)
    return paths


def test_twins_load_to_the_same_numbers_as_the_plain_csv(tmp_path: Path):
    frame = _frame()
    paths = _twins(frame, tmp_path)
    plain = load_table(paths.pop("plain.csv"), target="label")
    assert plain.groups is not None and plain.groups.names == ("height", "weight", "ratio", "colour")
    for name, path in paths.items():
        for source in (path, io.BytesIO(path.read_bytes())):  # a path and an upload
            ds = load_table(source, target="label", file_name=name)
            assert ds.feature_names == plain.feature_names, name
            np.testing.assert_array_equal(ds.X, plain.X, err_msg=name)
            np.testing.assert_array_equal(ds.y, plain.y, err_msg=name)
            assert ds.class_names == plain.class_names and ds.groups == plain.groups
        assert list_columns(path)["columns"] == list(frame.columns), name
    european = load_table(tmp_path / "european.csv", target="label")
    assert any("semicolon-separated with a decimal comma" in n for n in european.extra["notes"])
    sheet = load_table(tmp_path / "sheet.xlsx", target="label")
    assert any("first sheet 'data' of 2" in n for n in sheet.extra["notes"])


def test_semicolon_with_decimal_point_is_not_misread():
    text = "a;b;label\n" + "".join(f"{i}.5;{i * 2}.25;{i % 2}\n" for i in range(20))
    ds = load_table(text.encode(), target="label", file_name="dots.csv")
    np.testing.assert_allclose(ds.X[:3], [[0.5, 0.25], [1.5, 2.25], [2.5, 4.25]])


@pytest.mark.parametrize("seed", range(12))
def test_undecodable_bytes_get_our_one_line_message(seed: int):
    """Random bytes named .csv: a short message of ours, never the parser's wording."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b'abc,;"\r\n\t 0123456789\xe9\xff' if seed % 2 else bytes(range(32, 256)), np.uint8)
    data = bytes(rng.choice(alphabet, 3000))
    with pytest.raises(DataError) as err:
        load_table(data, target="label", file_name="junk.csv")
    message = str(err.value)
    assert "\n" not in message and len(message) < 1000
    for pandas_words in ("C error", "tokenizing", "universal-newline", "do you need", "Traceback"):
        assert pandas_words not in message


def test_missing_values_error_names_the_option_and_impute_fills_with_indicator(tmp_path: Path):
    frame = _frame()
    frame.loc[[3, 8], "weight"] = np.nan
    frame.loc[5, "colour"] = np.nan
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'weight' \(2\), 'colour' \(1\).*impute='median' or impute='most_frequent'"):
        load_table(path, target="label")
    with pytest.raises(DataError, match="impute must be None, 'median', 'most_frequent' or 'drop_rows'"):
        load_table(path, target="label", impute="mean")
    ds = load_table(path, target="label", impute="median")
    weight = ds.feature_names.index("weight")
    median = np.float32(np.nanmedian(frame["weight"].to_numpy(np.float32)))
    assert ds.X[3, weight] == median and ds.X[8, weight] == median
    indicator = ds.feature_names.index("weight (missing)")
    np.testing.assert_array_equal(np.flatnonzero(ds.X[:, indicator]), [3, 8])
    assert ds.groups.columns[ds.groups.names.index("weight")] == (weight, indicator)
    colour = ds.groups.columns[ds.groups.names.index("colour")]
    assert [ds.feature_names[c] for c in colour] == ["colour=blue", "colour=green", "colour=red", "colour (missing)"]
    frequent = load_table(path, target="label", impute="most_frequent")
    values, counts = np.unique(frame["weight"].dropna().to_numpy(np.float32), return_counts=True)
    assert frequent.X[3, weight] == values[np.argmax(counts)]


def test_drop_columns_and_their_errors():
    data = _frame().to_csv(index=False).encode()
    ds = load_table(data, target="label", file_name="t.csv", drop_columns=["colour", "ratio"])
    assert ds.feature_names == ["height", "weight"] and ds.groups is None
    with pytest.raises(DataError, match="Cannot drop 'size': no such column"):
        load_table(data, target="label", file_name="t.csv", drop_columns=["size"])
    with pytest.raises(DataError, match="target 'label' cannot also be dropped"):
        load_table(data, target="label", file_name="t.csv", drop_columns=["label"])


def test_leak_warning_names_a_copy_of_the_target_and_stays_quiet_otherwise():
    frame = _frame(120)
    frame["label_code"] = (frame["label"] == "tall").astype(int) * 3 + 1  # a recoded copy of the target
    ds = load_table(frame.to_csv(index=False).encode(), target="label", file_name="leaky.csv")
    assert [w.split(" —")[0] for w in ds.extra["warnings"]] == ["likely leak: height", "likely leak: label_code"]
    # height decides the label by construction here; without it and the copy nothing is flagged
    clean = load_table(frame.to_csv(index=False).encode(), target="label", file_name="c.csv",
                       drop_columns=["height", "label_code"])
    assert clean.extra["warnings"] == [] and leak_warnings(clean) == []


def test_id_like_target_warns():
    frame = _frame(40)
    frame["sample"] = [f"s{i:03d}" for i in range(40)]
    ds = load_table(frame.to_csv(index=False).encode(), target="sample", file_name="ids.csv")
    assert ds.task == "classification" and ds.n_classes == 40
    assert any("looks like an ID column or a regression target" in w for w in ds.extra["warnings"])
    frame["row"] = np.arange(40)
    counter = load_table(frame.drop(columns="sample").to_csv(index=False).encode(), target="row", file_name="r.csv")
    assert counter.task == "regression" and "looks like an ID column" in target_warnings(counter)[0]
    assert target_warnings(load_table(frame.to_csv(index=False).encode(), target="label", file_name="l.csv",
                                      drop_columns=["sample"])) == []


def test_cli_impute_drop_and_warnings_on_stderr(tmp_path: Path, capsys):
    frame = _frame(80)
    frame["copy"] = frame["label"].map({"tall": 1.0, "short": 0.0})
    frame.loc[4, "ratio"] = np.nan
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "picks.csv"
    assert cli_main(["select", "--data", str(path), "--target", "label", "-k", "1", "--method", "anova",
                     "--out", str(out), "--quiet"]) == 2
    assert "--impute" in capsys.readouterr().err
    assert cli_main(["select", "--data", str(path), "--target", "label", "-k", "2", "--method", "anova",
                     "--impute", "median", "--drop", "height", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: likely leak: copy" in err and "height" not in err
    picks = pd.read_csv(out)
    assert picks["name"].tolist()[0] == "copy"


def test_reproduction_notebook_replays_impute_and_dropped_columns(tmp_path: Path):
    from seqattn.reproduce import _loading_code

    frame = _frame()
    frame.loc[2, "ratio"] = np.nan
    ds = load_table(frame.to_csv(index=False).encode(), target="label", file_name="gaps.csv", impute="median",
                    drop_columns=["weight"])
    _, code = _loading_code(ds, None)
    assert "impute='median'" in code and "drop_columns=['weight']" in code


def test_leak_among_hundreds_of_columns_is_found_through_the_screen():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(300, 300)).round(3), columns=[f"g{j}" for j in range(300)])
    frame["cell_type"] = rng.choice(["B", "T", "NK"], 300)
    frame["g250"] = frame["cell_type"].map({"B": 7.0, "T": 3.0, "NK": 5.0})  # a recoded copy, not monotone
    ds = load_table(frame.to_csv(index=False).encode(), target="cell_type", file_name="wide.csv")
    assert [w.split(" —")[0] for w in ds.extra["warnings"]] == ["likely leak: g250"]


def test_a_strong_honest_feature_is_not_called_a_leak_on_real_iris():
    """Real iris: petal length alone is ~95% accurate, not a copy of the species; a recoded copy is a leak."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    ds = load_table(frame.to_csv(index=False).encode(), target="species", file_name="iris.csv")
    assert leak_warnings(ds) == [] and ds.extra["warnings"] == []
    for seed in range(5):  # no lucky split can call petal length a leak
        assert leak_warnings(ds, random_state=seed) == []
    frame["species_id"] = frame["species"] + 1
    leaky = load_table(frame.to_csv(index=False).encode(), target="species", file_name="iris.csv")
    assert [w.split(" —")[0] for w in leaky.extra["warnings"]] == ["likely leak: species_id"]
