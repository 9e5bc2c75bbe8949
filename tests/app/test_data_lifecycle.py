"""The Data page never keeps stale data, and an attached upload is never lost (issues 23 item 1, 24 item 8a).

* A failed upload leaves the previous data set in use *and says so*: no
  "Current data set: digits" preview under the error, and the other pages
  say they still use it.
* Going back to Data keeps Upload selected and the file attached.
* A new file clears the previous file's notes and warnings.
* Messages name the page's own controls ("Missing values", "Drop columns"),
  never the library's arguments or the CLI, nor advice the page cannot follow.
* A PNG renamed .csv gets no target picker: the file is checked first.
* Attaching a file and switching page in the same moment still loads the file.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_support.messages import data_page_message
from seqattn.data import DataError
from seqattn.data.tables import load_table
from seqattn.safe_text import unescape_markdown

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


def frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.normal(size=(n, 3)).round(3), columns=["bill", "flipper", "mass"])
    table["species"] = np.where(table["bill"] > 0, "Adelie", "Gentoo")
    return table


def csv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode()


def penguins_like(missing_features: bool = False) -> bytes:
    """A last column ('year', the default target) missing in some rows, and (optionally) missing feature
    values: the shape of Palmer penguins."""
    table = frame()
    if missing_features:
        table.loc[[3, 7], "flipper"] = np.nan
    table["year"] = [2007.0 if i % 9 else np.nan for i in range(len(table))]
    return csv_bytes(table)


def data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Upload").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.get("file_uploader")[0].upload(name, data).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    """What the elements show: markdown escapes and bold markers removed."""
    return [unescape_markdown(e.value.replace("**", "")) for e in elements]


def test_a_failed_upload_shows_no_stale_data_and_other_pages_say_so():
    at = upload(data_page(), "penguins.csv", penguins_like())  # default target 'year': missing in rows
    assert len(at.error) == 1 and "penguins.csv" in texts(at.error)[0]
    assert not [s for s in at.subheader if "Current data set" in s.value]  # no "Current data set: digits"
    assert not at.metric and not at.dataframe  # nor digits' summary and preview under the error
    assert any("penguins.csv was not loaded" in t and "still digits" in t for t in texts(at.info))
    assert at.session_state["dataset_key"] == "builtin:digits"  # the current data set did not change
    at.switch_page("pages/sequential_attention.py").run()
    warnings = texts(at.warning)
    assert any("penguins.csv could not be loaded, so this page still uses digits" in w for w in warnings), warnings


def test_going_back_to_data_keeps_the_upload_selected_and_attached():
    at = upload(data_page(), "penguins.csv", penguins_like())
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/data.py").run()
    assert at.radio(key="data_source").value == "Upload"
    assert any("Attached: penguins.csv" in t for t in texts(at.caption))
    assert len(at.error) == 1 and "penguins.csv" in texts(at.error)[0]  # still checked, still explained
    at.main.selectbox[0].select("species").run()  # another target: 'year' is now a feature with gaps
    assert "'Drop columns'" in texts(at.error)[0]
    at.main.multiselect[0].select("year").run()  # the advice, followed
    assert at.session_state["dataset"].name == "penguins" and not at.error


def test_a_new_file_clears_the_previous_files_notes_and_warnings():
    leaky = frame().assign(copy_of_species=lambda t: (t["species"] == "Adelie").astype(int))
    at = upload(data_page(), "leaky.csv", csv_bytes(leaky))
    assert any("likely leak" in t for t in texts(at.warning))
    upload(at, "broken.csv", PNG)
    assert not [t for t in texts(at.warning) if "likely leak" in t]  # leaky.csv's warning went with it
    assert len(at.error) == 1 and "broken.csv" in texts(at.error)[0]


def test_messages_use_the_pages_words():
    at = upload(data_page(), "penguins.csv", penguins_like())
    message = texts(at.error)[0]
    assert "choose another target column" in message
    assert not re.search(r"impute=|CLI|--impute|drop those rows", message), message
    upload(at, "penguins2.csv", penguins_like(missing_features=True))
    at.main.selectbox[0].select("species").run()  # now the missing feature values are the problem
    message = texts(at.error)[0]
    assert "'Missing values'" in message and "'Drop columns'" in message
    assert not re.search(r"impute=|CLI|--impute|drop those rows", message), message
    at.main.multiselect[0].select("year").run()  # 'year' has gaps too; without it only 'flipper' has
    next(s for s in at.main.selectbox if s.label == "Missing values").select("fill with the median").run()
    assert not at.error and at.session_state["dataset"].name == "penguins2"


@pytest.mark.parametrize("make", [
    lambda: penguins_like(),  # target missing
    lambda: csv_bytes(frame().assign(flipper=[np.nan] + [1.0] * 59)),  # feature values missing
    lambda: csv_bytes(frame().assign(const=1.0)),  # constant column
    lambda: csv_bytes(frame().assign(text=[f"id{i}" for i in range(60)])),  # free-text column
])
def test_every_rewritten_library_message_is_matched(make):
    """Each rule of app_support.messages still matches the library's current wording."""
    data = make()
    target = "year" if b"year" in data else "species"
    with pytest.raises(DataError) as caught:
        load_table(io.BytesIO(data), target=target, file_name="x.csv")
    message = str(caught.value)
    rewritten = data_page_message(message, table_controls=True)
    assert rewritten != message and not re.search(r"impute=|CLI|--impute|drop those rows|drop_constant", rewritten)


def test_a_png_renamed_csv_gets_no_controls_only_the_error():
    at = upload(data_page(), "photo.csv", PNG)
    assert not at.main.selectbox and not at.main.multiselect  # no target picker offering a "\x89PNG" column, no Task/Drop
    errors = texts(at.error)
    assert len(errors) == 1 and "does not look like a CSV text table" in errors[0]


def test_an_upload_attached_just_before_switching_page_is_loaded():
    """The uploader's value arrives in the same run that opens another page: the file is kept and loaded."""
    at = data_page()
    at.get("file_uploader")[0].upload("mine.csv", csv_bytes(frame()))
    at.switch_page("pages/sequential_attention.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["dataset"].name == "mine"
    assert any(c.value.startswith("**mine**") for c in at.caption)
    at.switch_page("pages/data.py").run()
    assert at.radio(key="data_source").value == "Upload"
    assert [s.value for s in at.subheader] == ["Current data set: mine"]


def test_a_file_that_fails_on_another_page_is_reported_there():
    at = data_page()
    at.get("file_uploader")[0].upload("photo.csv", PNG)
    at.switch_page("pages/compare.py").run()
    assert at.session_state["dataset_key"] == "builtin:digits"
    assert any("photo.csv could not be loaded, so this page still uses digits" in w for w in texts(at.warning))
