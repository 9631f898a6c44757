"""Pipelines: methods composed in a suite file (prune, then quantize).

In a suite file, a ``methods`` entry ``{ pipeline = [{ name = "global-magnitude", sparsity = 0.9 },
{ name = "int8-dynamic" }] }`` applies the steps in order, each to the previous step's model.
Its method name is the steps' names joined by ``+`` (``global-magnitude+int8-dynamic``), which no
plugin can register (``+`` is not allowed in names), and its parameters are
``{"steps": [{"name": ..., "params": ...}, ...]}``. List-valued step parameters expand into a
grid across all steps. Every step but the last must yield a torch module.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.plugin.manager import Registry
from harness.plugin.params import check_values, expand_grid, unknown_name
from harness.plugin.specs import ApplyContext, MethodSpec

SEPARATOR = "+"


def is_pipeline(name: str) -> bool:
    """Whether a method name denotes a pipeline."""
    return SEPARATOR in name


def expand(steps: Any, key: str, registry: Registry, problems: list[tuple[str, str]]) -> list[tuple[str, dict]]:
    """Validate a ``pipeline = [...]`` entry and expand it: ``[(name, {"steps": [...]})]`` per grid point."""
    if not isinstance(steps, list) or len(steps) < 2:
        problems.append((key, "a pipeline needs a list of two or more method entries"))
        return []
    per_step: list[list[dict]] = []
    bad = False  # every step is checked, so that one run reports the problems of all of them
    for i, step in enumerate(steps):
        skey = f"{key}[{i}]"
        if isinstance(step, str):
            step = {"name": step}
        if not isinstance(step, dict) or not isinstance(step.get("name"), str):
            problems.append((skey, "each pipeline step is a method name or a table with a 'name'"))
            bad = True
            continue
        if not registry.has("method", step["name"]):
            problems.append((skey, unknown_name("method", step["name"], registry.names("method"),
                                                none="none registered")))
            bad = True
            continue
        spec = registry.method(step["name"])
        last = i == len(steps) - 1
        if not last and "torch" not in spec.produces:
            problems.append((skey, f"method {step['name']} produces {'/'.join(spec.produces)}: only the "
                                   "last step of a pipeline may leave torch"))
            bad = True
        values = {k: v for k, v in step.items() if k != "name"}
        checked, errors = check_values(spec.params, values, where=skey)
        problems += [(exc.key, exc.reason) for exc in errors]
        bad = bad or bool(errors)
        per_step.append([{"name": step["name"], "params": point} for point in expand_grid(spec.params, checked)])
    if bad:
        return []
    name = SEPARATOR.join(s[0]["name"] for s in per_step)
    return [(name, {"steps": list(combo)}) for combo in itertools.product(*per_step)]


def resolve(registry: Registry, name: str, params: Mapping[str, Any]) -> MethodSpec:
    """The method spec to apply: a registered one, or a pipeline composed of registered ones."""
    if not is_pipeline(name):
        return registry.method(name)
    steps = [(registry.method(s["name"]), s["params"]) for s in params["steps"]]

    def apply(ctx: ApplyContext) -> Any:
        out: Any = ctx.module
        for i, (spec, step_params) in enumerate(steps):
            workdir = Path(ctx.workdir) / f"step{i}-{spec.name}"
            workdir.mkdir(parents=True, exist_ok=True)
            out = spec.apply(replace(ctx, module=out, params=step_params, workdir=workdir))
            if i < len(steps) - 1 and isinstance(out, (str, os.PathLike)):
                raise TypeError(f"pipeline step {spec.name} returned a file; only the last step may")
        return out

    def claims(_params: Mapping[str, Any]) -> dict:
        merged: dict = {}
        for spec, step_params in steps:
            if spec.claims:
                merged.update(spec.claims(step_params))
        return merged

    return MethodSpec(name=name.replace(SEPARATOR, "-then-"), apply=apply, produces=steps[-1][0].produces,
                      consumes=steps[0][0].consumes,
                      claims=claims, source="; ".join(s.source for s, _ in steps if s.source),
                      description="pipeline: " + " then ".join(s.name for s, _ in steps))


def label(registry: Registry, name: str) -> str:
    """The plugin label(s) providing a method, for error messages; a pipeline lists each step's."""
    names = name.split(SEPARATOR)
    return ", ".join(registry.plugin_of("method", n).label for n in names)


def provenance(registry: Registry, name: str, params: Mapping[str, Any]) -> dict:
    """Which plugin (and version) provides a method; for a pipeline, each step's."""
    def one(method: str) -> dict:
        plugin = registry.plugin_of("method", method)
        return {"plugin": plugin.name, "distribution": plugin.distribution, "version": plugin.version}

    if not is_pipeline(name):
        return one(name)
    return {"steps": [dict(one(s["name"]), method=s["name"]) for s in params["steps"]]}
