"""Verification benchmarks compressed by a method: each network through the method as a model is in a cell.

The benchmark itself (generated or imported) comes from :mod:`harness.verify.benchmarks`; this module
is the build step that turns it into the benchmark of one (method, seed), cached by content hash.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from pathlib import Path
from typing import Any

from harness.core.files import cached
from harness.core.identity import Component, digest, file_sha256, fingerprint_arrays
from harness.core.safeload import NETWORK_HINT, load_module, load_state
from harness.core.torchio import export_onnx, seed_everything
from harness.plan import pipeline
from harness.plan.cells import BASELINE_METHOD
from harness.plugin.registry import Registry
from harness.plugin.specs import ApplyContext, Skip, Split, Splits
from harness.verify.benchmarks import Benchmark, confirm_planted
from harness.verify.normalize import normalized


def compress(bench: Benchmark, registry: Registry, method: Component, seed: int, cache_dir: Path,
             notes: list[str] | None = None) -> Benchmark:
    """The benchmark with every network compressed by ``method`` (``dense``: unchanged).

    Each network's torch module (``model.pt`` beside it) goes through the method as a model does
    in a cell; the result is exported to ONNX and cached by content hash. Planted counterexamples
    are replayed on the compressed networks: compression can remove them.
    """
    if method.name == BASELINE_METHOD:
        return bench
    spec = pipeline.resolve(registry, method.name, method.params)
    replaced: dict[Path, Path] = {}
    final_of: dict[Path, Path] = {}
    # The torch module lies beside the network as shipped (``source``), not beside its normalized copy.
    shipped = {i.onnx: i.source or i.onnx for i in bench.instances}
    for onnx in sorted(shipped):
        module_file = shipped[onnx].with_name("model.pt")
        if not module_file.is_file():
            raise Skip(f"method {method.name} needs the benchmark's torch networks: no model.pt beside {onnx}")
        key = digest({"network": file_sha256(shipped[onnx]), "module": file_sha256(module_file),
                      "method": method.as_dict(), "seed": seed,
                      "plugins": pipeline.provenance(registry, method.name, method.params)}, 24)

        def build(tmp: Path, module_file: Path = module_file, onnx: Path = onnx) -> None:
            import torch

            module = load_module(module_file, what=f"benchmark {bench.name}: network", instead=NETWORK_HINT).eval()
            splits = _splits_of(shipped[onnx].parent, module)
            work = tmp / "work"
            work.mkdir(parents=True)
            seed_everything(seed)
            out = spec.apply(ApplyContext(module=copy.deepcopy(module), params=method.params, seed=seed,
                                          splits=splits, workdir=work, input_shape=splits.input_shape,
                                          export_onnx=lambda m, p, shape=splits.input_shape: export_onnx(m, p, shape)))
            if isinstance(out, torch.nn.Module):
                export_onnx(out.eval(), tmp / "model.onnx", splits.input_shape)
                torch.save(out, tmp / "model.pt")
            else:
                shutil.copyfile(out, tmp / "model.onnx")
            shutil.rmtree(work, ignore_errors=True)

        final = cached(cache_dir / "benchmarks" / "compressed" / key, build, notes, what="compressed benchmark")
        final_of[onnx] = final / "model.onnx"
        # The compressed network is the instance's network as shipped to verifiers: normalized as any other.
        replaced[onnx] = normalized(final / "model.onnx", cache_dir)
    instances = [dataclasses.replace(i, onnx=replaced[i.onnx], source=final_of[i.onnx],
                                     sha256=file_sha256(final_of[i.onnx])) for i in bench.instances]
    out = Benchmark(name=bench.name, root=bench.root, instances=instances,
                    info={**bench.info, "method": method.as_dict()})
    out.info["counterexamples_removed"] = confirm_planted(out)
    return out


def _splits_of(folder: Path, module: Any) -> Any:
    """The benchmark's centre points as a dataset, for methods that calibrate (``data.pt``)."""
    import numpy as np

    data_file = folder / "data.pt"
    if not data_file.is_file():
        raise FileNotFoundError(f"no data.pt in {folder}: a method needs the benchmark's inputs")

    data = load_state(data_file, what="benchmark inputs")
    x = np.stack([d[0].numpy() for d in data]).astype(np.float32)
    y = np.array([int(d[1]) for d in data], dtype=np.int64)
    split = Split(x=x, y=y)
    return Splits(train=split, calibration=split, test=split, input_shape=tuple(x.shape[1:]),
                  num_classes=int(max(y.max() + 1, 2)), labelled=True, fingerprint=fingerprint_arrays(x, y))
