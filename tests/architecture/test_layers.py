"""The layer order of docs/architecture.md, enforced: imports run one way, built-ins use the public API.

Every ``import`` statement counts, at module level or inside a function (an import inside a function
is still a dependency; it only hides a loop), except those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "harness"
PLUGINS = ROOT / "plugins" / "harness_plugins"

#: The layers, bottom (0) to top. A module may import its own package and any package of a lower
#: level; packages of one level are independent of each other. ``harness`` itself (``__version__``,
#: ``hookimpl``) is the floor.
LEVEL = {
    "harness": 0, "core": 0,
    "plugin": 1, "store": 1,
    "measure": 2, "verify": 2,
    "plan": 3,
    "build": 4,
    "api": 5, "run": 5,
    "query": 6,
    "report": 7,
    "devkit": 8,
    "testing": 9,
    "cli": 10,
}
#: Built-in plugins are templates for authors: the public API only, like any plugin.
PUBLIC = {"harness.api"}
PUBLIC_IN_TESTS = {"harness.api", "harness.testing"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(path: Path, module: str) -> list[tuple[str, int]]:
    """Every module ``path`` imports (absolute names; relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if node.lineno in typing_only if hasattr(node, "lineno") else False:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            out.append((base, node.lineno))
            # ``from harness.x import y`` may import the submodule harness.x.y
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return out


def package_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "harness"


def host_modules() -> dict[str, Path]:
    return {module_name(p, ROOT): p for p in sorted(HOST.rglob("*.py"))}


def existing(name: str, modules: dict[str, Path]) -> str | None:
    """The harness module ``name`` denotes (``harness.x.y`` may be a name inside ``harness.x``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def host_graph() -> dict[str, set[tuple[str, int]]]:
    modules = host_modules()
    graph = {}
    for mod, path in modules.items():
        deps = set()
        for name, line in imports(path, mod):
            if name.startswith("harness_plugins"):
                deps.add((name, line))
            elif name == "harness" or name.startswith("harness."):
                target = existing(name, modules)
                if target and target != mod:
                    deps.add((target, line))
        graph[mod] = deps
    return graph


def violations() -> list[str]:
    out = []
    for mod, deps in host_graph().items():
        src = package_of(mod)
        for target, line in sorted(deps):
            where = f"{mod} (line {line}) imports {target}"
            if target.startswith("harness_plugins"):
                out.append(f"{where}: the host never imports a plugin")
                continue
            dst = package_of(target)
            if src == "builtins":
                if dst not in ("builtins", "harness") and target not in PUBLIC:
                    out.append(f"{where}: built-in plugins import only harness.api")
                continue
            if dst == "builtins":
                out.append(f"{where}: the host reaches built-ins through the registry, never by import")
                continue
            if src == dst or target == "harness":
                continue
            if LEVEL[dst] >= LEVEL[src]:
                out.append(f"{where}: {src} (level {LEVEL[src]}) may import only lower levels, "
                           f"not {dst} (level {LEVEL[dst]})")
    return out


def test_every_package_has_a_level_and_a_docstring():
    packages = {package_of(m) for m in host_modules()} - {"harness"}
    assert packages - set(LEVEL) - {"builtins"} == set(), "a package without a level in LEVEL"
    for pkg in packages:
        init = HOST / pkg / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc and len(doc.split()) >= 8, f"harness/{pkg}/__init__.py must say its job and what it may import"


def test_imports_follow_the_layer_order():
    assert violations() == []


def test_no_import_loop():
    graph = {m: {t for t, _ in deps if not t.startswith("harness_plugins")} for m, deps in host_graph().items()}
    # a package's __init__ importing its own submodules is not a loop between modules
    index, low, stack, on, loops = {}, {}, [], set(), []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    assert loops == []


@pytest.mark.parametrize("folder", ["harness_plugins", "tests"])
def test_first_party_plugins_use_only_the_public_api(folder):
    base = PLUGINS if folder == "harness_plugins" else ROOT / "plugins" / "tests"
    allowed = PUBLIC if folder == "harness_plugins" else PUBLIC_IN_TESTS
    bad = []
    for path in sorted(base.rglob("*.py")) if base.exists() else []:
        for name, line in imports(path, module_name(path, base.parent)):
            if (name == "harness" or name.startswith("harness.")) and not any(
                    name == a or name.startswith(a + ".") for a in allowed):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert bad == []


def test_no_host_module_over_400_lines():
    long = {m: n for m, p in host_modules().items() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
