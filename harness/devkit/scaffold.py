"""``harness new-plugin``: write a complete, installable plugin package from the templates.

The templates live in ``harness/devkit/templates/`` (package data): ``common/`` files for every kind
and one folder per kind. They are ``string.Template`` texts; ``$$`` is a literal dollar.

Naming: ``NAME`` is the folder and the distribution (``harness-my-prune``); the Python
package is ``NAME`` with ``-`` as ``_`` (``harness_my_prune``); the plugin (entry point) and
the thing it registers are ``NAME`` without a leading ``harness-`` (``my-prune``).
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template

from harness import __version__
from harness.core.errors import UsageError

KINDS = ("method", "model", "dataset", "backend", "verifier")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")

#: What the template's code does, per kind: a working example the author replaces (the README says so).
STARTERS = {
    "method": "layer-wise magnitude pruning",
    "model": "a small MLP classifier",
    "dataset": "oriented stripes in noise (3 classes)",
    "backend": "ONNX Runtime on the CPU at a chosen graph-optimisation level",
    "verifier": "a random-sampling falsifier of VNN-LIB properties",
}


def description(kind: str, name: str) -> str:
    """The generated distribution's description: the plugin itself, not the example its code starts from."""
    return f"The {kind} {name} for the harness (a plugin made with harness new-plugin)"


#: template path (under templates/) -> output path (under the new folder); ``{package}`` is filled in.
COMMON = {
    "common/pyproject.toml.tmpl": "pyproject.toml",
    "common/conftest.py.tmpl": "conftest.py",
    "common/gitignore.tmpl": ".gitignore",
    "common/__init__.py.tmpl": "{package}/__init__.py",
}
PER_KIND = {
    "README.md.tmpl": "README.md",
    "plugin.py.tmpl": "{package}/plugin.py",
    "test_plugin.py.tmpl": "tests/test_{package}.py",
    "suite.toml.tmpl": "suite.toml",
    "net.py.tmpl": "{package}/net.py",
}


class ScaffoldError(UsageError, ValueError):
    """The plugin cannot be created as asked; the message says what to change."""


@dataclass
class Scaffold:
    """A plugin package written by :func:`new_plugin`."""

    folder: Path
    kind: str
    dist: str
    package: str
    name: str
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        """What was written and the next commands, as ``harness new-plugin`` prints them."""
        rel = os.path.relpath(self.folder)
        lines = [f"Created {self.kind} plugin {self.name!r} in {rel}/ (distribution {self.dist}, "
                 f"package {self.package}):"]
        lines += [f"  {os.path.relpath(f, self.folder)}" for f in self.files]
        steps = [(f"pip install -e {rel}", f"then 'harness plugins' lists {self.name}"),
                 (f"pytest {rel}", "its tests, the conformance check included"),
                 (f"harness check-plugin {self.dist}", "the conformance check, clause by clause")]
        if (self.folder / "suite.toml").is_file():
            steps.append((f"harness run {os.path.join(rel, 'suite.toml')}", "measure it; prints the leaderboard"))
        width = max(len(cmd) for cmd, _ in steps)
        lines.append("Next:")
        lines += [f"  {cmd:<{width}}  # {why}" for cmd, why in steps]
        return "\n".join(lines)


def names_for(name: str) -> dict[str, str]:
    """The distribution, package and registered names derived from ``NAME``."""
    return {"dist": name, "package": name.replace("-", "_"), "name": name.removeprefix("harness-")}


def _template_root():
    return resources.files("harness.devkit") / "templates"


def _validate(name: str, kind: str, folder: Path, plugins_dir: str | None) -> dict[str, str]:
    if kind not in KINDS:
        raise ScaffoldError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")
    if not NAME_RE.match(name):
        raise ScaffoldError(f"invalid plugin name {name!r}: use lower-case letters and digits joined by '-' "
                            "(starting with a letter), e.g. 'harness-my-prune'")
    names = names_for(name)
    if not names["name"]:
        raise ScaffoldError(f"invalid plugin name {name!r}: say what it is after 'harness-'")
    if keyword.iskeyword(names["package"]):
        raise ScaffoldError(f"invalid plugin name {name!r}: {names['package']!r} is a Python keyword")
    try:
        spec = importlib.util.find_spec(names["package"])
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        where = spec.origin or ", ".join(spec.submodule_search_locations or [])
        raise ScaffoldError(f"a module named {names['package']!r} is already importable ({where}); a plugin package "
                            "of that name would shadow it or be shadowed by it: choose another NAME")
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists: choose another NAME or --dir, or remove the folder")
    _check_free(names["name"], kind, plugins_dir)
    return names


def _check_free(thing: str, kind: str, plugins_dir: str | None) -> None:
    """Refuse a name the installed plugins already use (it would fail at the first load)."""
    from harness.plugin.manager import PluginError, load_host

    try:
        registry = load_host(plugins_dir).registry
    except PluginError:
        return  # a broken environment is reported by every other command; it does not block writing files
    if registry.has(kind, thing):
        owner = registry.plugin_of(kind, thing)
        raise ScaffoldError(f"a {kind} named {thing!r} is already registered by plugin {owner.label}: "
                            "choose another NAME (names are unique per kind)")
    if thing in registry.plugins:
        raise ScaffoldError(f"a plugin named {thing!r} is already installed ({registry.plugins[thing].label}): "
                            "choose another NAME")


def new_plugin(name: str, kind: str, parent: str | os.PathLike = ".", *,
               plugins_dir: str | None = None) -> Scaffold:
    """Write the plugin package ``parent/NAME`` for ``kind``; raise :class:`ScaffoldError` on a bad request.

    The folder appears whole or not at all (written aside, then renamed into place).
    """
    folder = Path(parent) / name
    names = _validate(name, kind, folder, plugins_dir)
    values = {**names, "kind": kind, "description": description(kind, names["name"]), "starter": STARTERS[kind],
              "harness_version": __version__}
    root = _template_root()
    plan = dict(COMMON)
    plan.update({f"{kind}/{src}": dst for src, dst in PER_KIND.items() if (root / kind / src).is_file()})
    Path(parent).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    written = []
    try:
        for src, dst in plan.items():
            out = tmp / dst.format(package=names["package"])
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(Template((root / src).read_text()).substitute(values))
            written.append(folder / dst.format(package=names["package"]))
        # mkdtemp made the folder private (0700); give it the mode any new folder gets.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Scaffold(folder=folder, kind=kind, dist=names["dist"], package=names["package"], name=names["name"],
                    files=sorted(written))
