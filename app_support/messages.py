"""The library's data messages in the Data page's words.

``seqattn`` explains a bad file to a Python or CLI user ("impute='median' …
CLI --impute"); on the Data page the same problem must name the controls the
page has ('Missing values' fills or drops rows, 'Drop columns'), and never
advise what the page cannot do.
Each rule below rewrites one library sentence; ``tests/app/test_data_lifecycle.py``
produces every one of them from the real loader, so a changed library
wording fails a test instead of slipping through untranslated.
"""
from __future__ import annotations

import re

#: What the page's table controls are called (h5ad uploads and server files have none of them).
FILL = "choose a fill or 'drop rows with a missing value' under 'Missing values' above"
DROP = "leave those columns out with 'Drop columns'"

# (pattern, replacement with the table controls, replacement without them); replacements may use groups.
_RULES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r" ?Fill them with impute='median' or impute='most_frequent', or drop those rows with "
                r"impute='drop_rows' \(CLI --impute; Data page: 'Missing values'\), or drop those columns\."),
     f" To use this file, {FILL}, or {DROP}.",
     " Fix those values in the file."),
    (re.compile(r" ?Impute or drop those values first\."),
     f" To use this file, {FILL}, or {DROP}.",
     " Fix those values in the file."),
    (re.compile(r"The target (.+?) is missing in (\d+) row\(s\); drop those rows or fill them in\."),
     r"The target \1 is empty in \2 row(s): choose another target column, or choose 'drop rows with a "
     r"missing value' under 'Missing values' above.",
     r"The target \1 is empty in \2 row(s): choose another target, or fill those cells in the file."),
    (re.compile(r"The target (.+?) holds infinite values; fix or drop those rows\."),
     r"The target \1 holds infinite values: choose another target column, or fix those rows in the file and "
     r"upload it again.",
     r"The target \1 holds infinite values: choose another target, or fix those rows in the file."),
    (re.compile(r"Drop them \(or load with drop_constant=True\)\."),
     "Leave them out with 'Drop columns' above.",
     "Remove them from the file."),
    (re.compile(r"Encode them as numbers or drop them "),
     "Leave them out with 'Drop columns' above, or encode them as numbers in the file ",
     "Encode them as numbers in the file "),
    (re.compile(r"hold no values at all, so there is nothing to impute from; drop them\."),
     "hold no values at all: leave them out with 'Drop columns' above.",
     "hold no values at all: remove them from the file."),
    (re.compile(r" ?\(or load with [a-z_]+=(True|False)\)"), "", ""),
]


def data_page_message(message: str, table_controls: bool) -> str:
    """``message`` (a ``DataError``'s text) with the Data page's advice: its 'Missing values' and 'Drop
    columns' controls where it offers them (``table_controls``: a table upload), else what to fix in the file."""
    for pattern, with_controls, without in _RULES:
        message = pattern.sub(with_controls if table_controls else without, message)
    return message
