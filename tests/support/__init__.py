"""Helpers shared by test modules (not tests themselves: pytest collects nothing here).

Import them by their package path, ``from tests.support.bad_inputs_corpus import
...``: the repository root is on ``sys.path`` (pytest's ``pythonpath = ["."]``,
``PYTHONPATH`` in the child processes some tests start), so no test relies on
the folder a conftest happens to sit in.

* ``bad_inputs_corpus``: the generated bad and hostile input files, and
  ``measure_in_child`` (time and peak memory of one load in a capped process);
* ``notebook_helpers``: run a notebook in a fresh kernel, read its outputs, export it with nbconvert;
* ``browser_helpers``: Playwright waits, the app's sidebar menu and the steps
  several flows share (open Home, upload a CSV, run SA);
* ``app_helpers``: the AppTest steps several app tests share (upload, run SA /
  Compare and collect the result).
"""
