"""The package's shape, checked from its source: no import circles, no borrowing of another module's private names.

Every ``import`` in ``seqattn/`` counts — at module level or inside a function
(a lazy import still ties the two modules together) — except those under
``if TYPE_CHECKING:``, which never run. A circle makes the import order matter
and the modules impossible to read, test or move one at a time; an underscore
name is a module's own business, so borrowing one couples two modules through
something neither promises to keep, whether it is imported by name
(``from m import _x``) or reached through an imported module (``m._x``).
There are no exceptions: a helper that several modules need gets a public
name in the module that owns the concept (for ``data/``: ``sources``,
``checks``, ``limits``).
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "seqattn"


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
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_names: dict[str, str] = {}  # local name -> seqattn module it is bound to
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
                module_names.update({alias.asname: alias.name for alias in node.names
                                     if alias.asname and alias.name in modules})
            else:
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = []
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
                    if full in modules:
                        module_names[alias.asname or alias.name] = full
                    if alias.name.startswith("_") and full not in modules and base.startswith("seqattn"):
                        private.add((name, base, alias.name))
            for target in targets:
                module = owner(target) if target.startswith("seqattn") else None
                if module and module != name:
                    edges[name].add(module)
        private |= {(name, module, attr) for module, attr in _private_attributes(tree, module_names)
                    if module != name}
    return edges, private


def _private_attributes(tree: ast.AST, module_names: dict[str, str]) -> set[tuple[str, str]]:
    """``(module, name)`` for each ``m._name`` where ``m`` is a local name bound to an imported seqattn module."""
    return {(module_names[node.value.id], node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in module_names and node.attr.startswith("_") and not node.attr.startswith("__")}


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


def test_the_walker_sees_private_names_imported_or_reached_through_a_module(tmp_path):
    """Both ways of borrowing count: ``from m import _x`` and ``import``-ing ``m`` then using ``m._x``."""
    sources = {
        "seqattn.owner": "def _helper(): pass\ndef public(): pass\n",
        "seqattn.by_name": "from seqattn.owner import _helper, public\n",
        "seqattn.by_module": "def f():\n    from seqattn import owner\n    return owner._helper(), owner.public()\n",
        "seqattn.by_alias": "import seqattn.owner as o\nvalue = o._helper\n",
        "seqattn.own_use": "def _mine(): pass\nclass K:\n    def g(self):\n        return self._mine, _mine\n",
    }
    modules = {}
    for module, text in sources.items():
        path = tmp_path / f"{module}.py"
        path.write_text(text)
        modules[module] = path
    _, private = _imports(modules)
    assert private == {(importer, "seqattn.owner", "_helper")
                       for importer in ("seqattn.by_name", "seqattn.by_module", "seqattn.by_alias")}


def test_no_import_circles():
    edges, _ = _imports(_modules())
    cycles = [sorted(c) for c in _cycles(edges)]
    assert not cycles, f"import circles (move what both sides need to a module below them): {cycles}"


def test_no_module_imports_another_modules_private_names():
    private = sorted(_imports(_modules())[1])
    assert not private, f"imports of another module's underscore names (give them a public name): {private}"
