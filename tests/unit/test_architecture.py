"""The package's shape, checked from its source: no import circles, no borrowing of another module's private names.

Every ``import`` in ``seqattn/`` counts — at module level or inside a function
(a lazy import still ties the two modules together) — except those under
``if TYPE_CHECKING:``, which never run. A circle makes the import order matter
and the modules impossible to read, test or move one at a time; an underscore
name is a module's own business, so borrowing one couples two modules through
something neither promises to keep.

``ALLOWED_CYCLES`` and ``ALLOWED_PRIVATE_IMPORTS`` list what the ``data/``
package still does (its split into sources, checks and readers is the next
step of issue 21); that work empties both lists. Nothing outside ``data/``
(and its one consumer of private loader helpers, ``anndata_api``) may be added.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "seqattn"

#: Import circles that may remain, all inside data/: a circle found must lie within one of these sets.
ALLOWED_CYCLES = [
    # the package __init__ re-exports dataset/synthetic, whose helpers import names back from seqattn.data;
    # dataset.py and groups.py import each other (DataError / FeatureGroups)
    {"seqattn.data", "seqattn.data.dataset", "seqattn.data.groups", "seqattn.data.stream", "seqattn.data.synthetic"},
    # the table reader dispatches to the h5ad (and workbook) readers, which reuse its private checks
    {"seqattn.data.h5ad", "seqattn.data.h5ad_backed", "seqattn.data.tables", "seqattn.data.xlsx"},
]
#: (importing module, imported module, name): data/'s private helpers shared across its readers.
ALLOWED_PRIVATE_IMPORTS = {
    ("seqattn.data.tables", "seqattn.data.h5ad", name) for name in ("_load_h5ad", "_h5ad_header")
} | {
    ("seqattn.data.h5ad", "seqattn.data.tables", name)
    for name in ("_HDF5_MAGIC", "_Content", "_check_enough_samples", "_check_finite_dense", "_finish",
                 "_handle_constant", "_listing", "_raise_duplicates")
} | {
    ("seqattn.anndata_api", "seqattn.data.tables", name) for name in ("_check_enough_samples", "_finish", "_listing")
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every import node that can run: those inside ``if TYPE_CHECKING:`` blocks are left out."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skipped]


def _imports(modules: dict[str, Path]) -> tuple[dict[str, set[str]], set[tuple[str, str, str]]]:
    """(module -> seqattn modules it imports, {(importer, imported module, private name)})."""
    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {name: set() for name in modules}
    private: set[tuple[str, str, str]] = set()
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = []
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
                    if alias.name.startswith("_") and full not in modules and base.startswith("seqattn"):
                        private.add((name, base, alias.name))
            for target in targets:
                module = owner(target) if target.startswith("seqattn") else None
                if module and module != name:
                    edges[name].add(module)
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walker_sees_lazy_imports_and_skips_type_checking_blocks(tmp_path):
    """The checks below can fail: a function-level import counts, a TYPE_CHECKING import does not."""
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import b\n"
                     "def f():\n    from c import _d\n")
    assert [ast.unparse(n) for n in _runtime_nodes(tree)] == ["from typing import TYPE_CHECKING", "from c import _d"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_circles_outside_the_allowed_ones():
    edges, _ = _imports(_modules())
    cycles = _cycles(edges)
    unexpected = [sorted(c) for c in cycles if not any(c <= allowed for allowed in ALLOWED_CYCLES)]
    assert not unexpected, f"import circles: {unexpected}"
    assert all(m.startswith("seqattn.data") for allowed in ALLOWED_CYCLES for m in allowed)
    stale = [sorted(a) for a in ALLOWED_CYCLES if not any(c <= a for c in cycles)]
    assert not stale, f"allowed circles that no longer exist (remove them from ALLOWED_CYCLES): {stale}"


def test_no_module_imports_another_modules_private_names():
    _, private = _imports(_modules())
    unexpected = sorted(private - ALLOWED_PRIVATE_IMPORTS)
    assert not unexpected, f"imports of another module's underscore names: {unexpected}"
    stale = sorted(ALLOWED_PRIVATE_IMPORTS - private)
    assert not stale, f"allowed private imports that no longer happen (remove them): {stale}"
