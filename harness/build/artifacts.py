"""Reference weights and compressed artifacts: built once, cached on disk by content hash.

Runs inside worker processes (it imports torch). Every cache entry goes through
:func:`harness.core.files.cached`: written to a temporary folder and renamed into
place with its files' sha256 recorded, verified whenever it is used, and rebuilt
once when it is corrupt. Module files are loaded without running code from them
(:mod:`harness.core.safeload`).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from harness.core.files import cached
from harness.core.identity import Component, digest, file_sha256
from harness.core.safeload import UnsafeFile, load_state
from harness.core.torchio import EXPORT_FORMAT, export_onnx, seed_everything
from harness.plan import pipeline
from harness.plugin.manager import Registry
from harness.plugin.specs import ApplyContext, Artifact, DatasetContext, ModelContext, Splits

_DATASETS: dict[str, Splits] = {}


def plugin_version(registry: Registry, kind: str, name: str) -> dict:
    """Which plugin (and distribution version) provides a thing: recorded with every result."""
    plugin = registry.plugin_of(kind, name)
    return {"plugin": plugin.name, "distribution": plugin.distribution, "version": plugin.version}


def load_dataset(registry: Registry, dataset: Component, cache_dir: Path) -> Splits:
    """Load a dataset once per process."""
    key = digest(dataset.as_dict())
    if key not in _DATASETS:
        reg = registry.get("dataset", dataset.name)
        splits = reg.spec.load(DatasetContext(params=dataset.params, cache_dir=cache_dir / "datasets"))
        if not isinstance(splits, Splits):
            raise TypeError(f"dataset {dataset.name} of plugin {reg.plugin.label}: load(ctx) returned "
                            f"{type(splits).__name__}; return harness.api.Splits(train=Split(x, y), "
                            "calibration=..., test=..., input_shape=..., num_classes=..., fingerprint=...)")
        _DATASETS[key] = splits
    return _DATASETS[key]


def example_input(splits: Splits, n: int = 2) -> Any:
    """``n`` samples of the dataset's inputs (an array or a feed), to trace and export models with."""
    from harness.core.inputs import prepare, take

    split = splits.test if len(splits.test) else splits.train
    return prepare(take(split.x, slice(0, n)))


def reference_model(registry: Registry, model: Component, dataset: Component, seed: int,
                    splits: Splits, cache_dir: Path, notes: list[str] | None = None) -> tuple[Any, dict]:
    """The dense model with its weights: from a file, from the training cache, or trained now.

    ``notes`` collects what happened to cache entries (a corrupt one rebuilt), for the cell's info.
    """
    import torch

    reg = registry.get("model", model.name)
    spec = reg.spec
    params = {k: v for k, v in model.params.items() if k != "weights"}
    ctx = ModelContext(params=params, input_shape=tuple(splits.input_shape),
                       num_classes=splits.num_classes, seed=seed, splits=splits)
    seed_everything(seed)
    module = spec.build(ctx)
    if spec.provides == ("onnx",):
        # A model that never was a torch module: build returns its ONNX file, passed through as is.
        path = Path(module)
        if not path.is_file():
            raise ValueError(f"model {model.name}: build() returned {module!r}, not an ONNX file")
        return path, {"source": "onnx file", "path": str(path), "sha256": file_sha256(path)}
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"model {model.name} of plugin {reg.plugin.label}: build(ctx) returned "
                        f"{type(module).__name__}; return a torch.nn.Module")
    weights_file = model.params.get("weights")
    if weights_file:
        state = load_state(weights_file, what=f"model {model.name}: weights file")
        try:
            module.load_state_dict(state)
        except Exception as exc:
            raise UnsafeFile(f"model {model.name}: weights file {weights_file} does not fit the "
                             f"architecture: {_first_line(exc)}", file=str(weights_file)) from None
        return module.eval(), {"source": "file", "path": weights_file, "sha256": file_sha256(weights_file)}
    if spec.pretrained is not None:
        return module.eval(), dict(spec.pretrained(ctx))
    if spec.train is None or not splits.labelled:
        why = "no training recipe" if spec.train is None else f"dataset {dataset.name} is unlabelled"
        return module.eval(), {"source": "seeded initialisation", "why": why, "seed": seed}
    key = digest({"model": model.name, "params": params, "plugin": plugin_version(registry, "model", model.name),
                  "dataset": dataset.as_dict(), "data": splits.fingerprint, "seed": seed,
                  "input_shape": list(splits.input_shape), "num_classes": splits.num_classes})

    def train(tmp: Path) -> None:
        t0 = time.perf_counter()
        seed_everything(seed)
        report = spec.train(module, ctx) or {}
        torch.save(module.state_dict(), tmp / "weights.pt")
        info = {"source": "trained", "key": key, "seed": seed, "train_s": time.perf_counter() - t0,
                "report": report}
        (tmp / "weights.json").write_text(json.dumps(info, indent=1, default=str))

    final = cached(cache_dir / "weights" / key, train, notes, what="cached reference weights")
    module.load_state_dict(load_state(final / "weights.pt", what="cached reference weights"))
    info = json.loads((final / "weights.json").read_text())
    info["sha256"] = file_sha256(final / "weights.pt")
    return module.eval(), info


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def build_artifact(registry: Registry, cell: dict, splits: Splits, cache_dir: Path,
                   notes: list[str] | None = None) -> Artifact:
    """The compressed artifact of a cell, from the cache (its files verified) or built now.

    ``cell`` carries ``model``, ``dataset`` and ``method`` as ``{"name", "params"}`` and ``seed``.
    ``notes`` collects what happened to cache entries (a corrupt one rebuilt), for the cell's info.
    """
    import torch

    model = Component(**cell["model"])
    dataset = Component(**cell["dataset"])
    method = Component(**cell["method"])
    seed = cell["seed"]
    module, weights = reference_model(registry, model, dataset, seed, splits, cache_dir, notes)
    plugins = {"model": plugin_version(registry, "model", model.name),
               "dataset": plugin_version(registry, "dataset", dataset.name)}
    plugins["method"] = pipeline.provenance(registry, method.name, method.params)
    identity = {"model": model.as_dict(), "dataset": dataset.as_dict(), "method": method.as_dict(),
                "seed": seed, "data": splits.fingerprint, "weights": weights.get("sha256", weights),
                "plugins": plugins, "export": EXPORT_FORMAT}
    key = digest(identity, 24)
    final = cache_dir / "artifacts" / key

    def build(tmp: Path) -> None:
        t0 = time.perf_counter()
        spec = pipeline.resolve(registry, method.name, method.params)
        label = pipeline.label(registry, method.name)
        input_shape = tuple(splits.input_shape)
        example = example_input(splits)
        work = tmp / "work"
        work.mkdir()
        source = copy.deepcopy(module)
        seed_everything(seed)
        ctx = ApplyContext(module=source, params=method.params, seed=seed, splits=splits, workdir=work,
                           input_shape=input_shape, export_onnx=lambda m, p: export_onnx(m, p, input_shape, example))
        out = spec.apply(ctx)
        formats: list[str] = []
        if isinstance(out, torch.nn.Module):
            out.eval()
            torch.save(out, tmp / "module.pt")
            formats.append("torch")
            analysed = out
            if "onnx" in spec.produces:
                export_onnx(out, tmp / "model.onnx", input_shape, example)
                formats.append("onnx")
        elif isinstance(out, (str, os.PathLike)) and Path(out).is_file():
            shutil.copyfile(out, tmp / "model.onnx")
            formats.append("onnx")
            # An ONNX-only method (quantization) keeps the architecture and its zeros: its FLOPs are
            # those of the module it was made from.
            analysed = source
        else:
            shown = repr(out) if len(repr(out)) <= 120 else repr(out)[:117] + "..."
            raise TypeError(f"method {method.name} of plugin {label}: apply(ctx) returned {shown}; "
                            "return the compressed torch.nn.Module (ctx.module changed in place will do), or the "
                            "path of an ONNX file written under ctx.workdir")
        shutil.rmtree(work, ignore_errors=True)
        from harness.core.inputs import describe, take
        from harness.measure.analysis import flop_counts, output_channels

        # FLOPs are counted on a torch module; an ONNX-file model has none to count.
        is_torch = isinstance(analysed, torch.nn.Module)
        analysis = flop_counts(analysed, input_shape, take(example, slice(0, 1))) if is_torch else {}
        if is_torch and isinstance(module, torch.nn.Module):
            # The dense model's FLOPs: the numerator of the theoretical speedup of methods that shrink layers.
            analysis["reference_flops"] = flop_counts(module, input_shape, take(example, slice(0, 1)))["flops"]
            # Output channels of the reference's conv/linear layers: what structured claims are measured against.
            analysis["reference_out_channels"] = output_channels(module)
        claims = dict(spec.claims(method.params)) if spec.claims else {}
        manifest = {
            "key": key, "formats": formats, "input_shape": list(input_shape), "inputs": describe(example),
            "num_classes": splits.num_classes, "identity": identity, "claims": claims,
            "encodings": dict(ctx.encodings) if "torch" in formats else {},
            "weights": weights, "build_s": time.perf_counter() - t0, "torch": torch.__version__,
            "exporter": "torch.onnx.export(dynamo=True)", "analysis": analysis,
        }
        (tmp / "artifact.json").write_text(json.dumps(manifest, indent=1, default=str))

    # cached() has just verified the files: no second hashing of them.
    final = cached(final, build, notes, what="cache entry")
    manifest = json.loads((final / "artifact.json").read_text())
    return Artifact(path=final, key=manifest["key"], manifest=manifest)
