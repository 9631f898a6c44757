"""ONNX networks normalized before any verifier reads them: constants folded, Identity and no-op nodes gone.

Real files carry nodes that compute nothing a verifier needs to see: a plain ``torch.onnx.export``
writes ``Identity`` nodes on shared constant initializers, older exporters list initializers as
graph inputs (ONNX IR < 4), shape computations on constants survive as ``Shape``/``Gather``/``Concat``
chains, and ``Dropout``, ``Identity`` or a ``Reshape`` to the same shape sit in the chain. Graph
readers that accept only operators on the data path reject such files although their function is a
plain feed-forward network.

The normalization is onnxscript's optimizer (:func:`onnxscript.optimizer.optimize`, the pass
``torch.onnx.export`` itself runs; onnxscript is already a dependency of the exporter): constant
folding, removal of Identity and no-op nodes (``Dropout`` in inference, ``Add`` of zero, ``Mul`` by
one, a ``Reshape``/``Cast`` that changes nothing) and of unused nodes and initializers. Before it,
initializers listed as graph inputs become constants (a verification network's weights are not
inputs), which is what lets the optimizer fold through them.

:func:`normalized` is the one place a benchmark's network is normalized: the benchmark reader
(:mod:`harness.verify.benchmarks`) hands every verifier, built-in or a VNN-COMP tool, and the
witness replay the same normalized copy, cached by the sha256 of the original file, and the
original's sha256 stays what identifies the instance.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

#: Bumped when the normalization changes, so cached normalized copies are rebuilt.
NORMALIZATION = "onnxscript-optimize/1"


def normalize_model(model: Any) -> Any:
    """A normalized copy of an ``onnx.ModelProto`` (the same function of the same inputs)."""
    import onnx
    import onnx_ir as ir
    import onnxscript.optimizer
    from onnx_ir.passes.common import IdentityEliminationPass, RemoveInitializersFromInputsPass

    model = onnx.ModelProto.FromString(model.SerializeToString())
    if model.ir_version < 4:
        # IR 3 requires every initializer among the inputs; from IR 4 on they may be constants.
        model.ir_version = 4
    loud = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [log.level for log in loud]
    for log in loud:  # the optimizer logs every initializer it leaves alone
        log.setLevel(logging.ERROR)
    try:
        graph = ir.serde.deserialize_model(model)
        RemoveInitializersFromInputsPass()(graph)
        optimized = onnxscript.optimizer.optimize(graph)
        optimized = optimized if optimized is not None else graph
        IdentityEliminationPass()(optimized)
        return ir.serde.serialize_model(optimized)
    finally:
        for log, level in zip(loud, levels):
            log.setLevel(level)


def normalize_file(source: str | Path, target: str | Path) -> Path:
    """Write the normalized network of the ONNX file ``source`` to ``target`` (one file, no external data)."""
    import onnx

    source, target = Path(source), Path(target)
    try:
        model = onnx.load(str(source))
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise ValueError(f"{source}: not a readable ONNX file: {type(exc).__name__}: {exc}") from None
    out = normalize_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{time.time_ns()}")
    onnx.save(out, str(tmp))
    tmp.replace(target)
    return target


def normalized(source: str | Path, cache_dir: str | Path, sha256: str | None = None,
               notes: list[str] | None = None) -> Path:
    """The normalized copy of ``source`` in the cache, made once; keyed by the original's sha256.

    The copy keeps the original's file name (results and logs name the network as the benchmark
    does). It is a verified cache entry (:func:`harness.core.files.cached`): a copy changed on disk
    is rebuilt, never handed to a verifier.
    """
    from harness.core.files import cached
    from harness.core.identity import digest, file_sha256

    source = Path(source)
    sha = sha256 or file_sha256(source)
    final = Path(cache_dir) / "benchmarks" / "normalized" / digest({"sha256": sha, "by": NORMALIZATION}, 24)
    final.parent.mkdir(parents=True, exist_ok=True)
    entry = cached(final, lambda tmp: normalize_file(source, tmp / source.name), notes,
                   what="normalized network")
    return entry / source.name
