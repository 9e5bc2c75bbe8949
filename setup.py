"""Packaging glue pyproject.toml cannot express: automatic package discovery
*plus* the repository's top-level ``data/`` folder shipped inside the package.

``data/`` is the one copy of the bundled data sets; it is mapped to the
package ``seqattn.builtin_data`` so wheels carry it, and an editable install
points at the folder itself. ``seqattn.builtins`` looks there.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["seqattn", "seqattn.*"]) + ["seqattn.builtin_data"],
    package_dir={"seqattn.builtin_data": "data"},
    package_data={"seqattn.builtin_data": ["*.h5ad", "*.npz", "README.md"],
                  "seqattn.plots": ["*.js"]},  # the light figure renderer for exported notebooks
)
