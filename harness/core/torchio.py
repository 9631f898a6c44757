"""Torch helpers every layer that touches a network shares: seeding and single-file ONNX export.

torch is imported inside each function, so importing this module stays instant.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

#: What :func:`export_onnx` writes, as part of every artifact's cache key: an artifact cached by an
#: exporter that kept the export metadata (stack traces) is rebuilt, never mixed with stripped ones.
EXPORT_FORMAT = "torch.onnx.export(dynamo=True), export metadata stripped"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (the host does it before build, train and apply)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def export_onnx(module: Any, path: Path, input_shape: tuple[int, ...], example: Any = None) -> Path:
    """Export a torch module to a single-file ONNX model with a dynamic batch dimension.

    ``example`` (an array or a feed of named arrays, see :mod:`harness.core.inputs`) is what the module
    is traced with; without it, zeros of ``(2, *input_shape)``. Integer inputs of a feed (token
    ids, masks) also get a dynamic sequence axis; the ONNX inputs take the module's argument names.

    The file holds the graph and the weights only: the exporter's metadata (each node's Python stack
    trace with the exporting machine's paths, FX names, doc strings) is stripped
    (:func:`strip_export_metadata`), so the same module exports to the same bytes on every machine
    and from every install folder, and the size suite's byte counts measure the model.
    """
    import logging
    import warnings

    import numpy as np
    import torch

    from harness.core.inputs import dynamic_shapes, torch_args

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    if example is None:
        example = np.zeros((2, *input_shape), dtype=np.float32)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch_args(example), str(path), dynamo=True, external_data=False,
                          dynamic_shapes=dynamic_shapes(example), verbose=False)
    import onnx

    model = onnx.load(str(path))
    strip_export_metadata(model)
    onnx.save_model(model, str(path))
    return path


def strip_export_metadata(model: Any) -> Any:
    """Remove what an exporter records about the export, not the model, from an ``onnx.ModelProto``
    (in place; returns it): every ``doc_string`` and the ``metadata_props`` of nodes, graph inputs,
    outputs, initializers, value infos and functions, in subgraphs too.

    ``torch.onnx.export`` stores each node's stack trace there (``File "/home/.../nets.py", line 43``):
    absolute paths that differ between machines and folders and made about a tenth of a small model's
    bytes. The producer name and version stay (they name the exporter, not the machine), as do the
    model-level ``metadata_props`` a method may set on purpose; the exporter's own (``pkg.torch.*``) go.
    """
    def clean(item: Any) -> None:
        item.doc_string = ""
        if hasattr(item, "metadata_props"):
            del item.metadata_props[:]

    def graph(g: Any) -> None:
        clean(g)
        for group in (g.input, g.output, g.value_info, g.initializer, g.sparse_initializer):
            for item in group:
                if hasattr(item, "doc_string"):
                    item.doc_string = ""
                if hasattr(item, "metadata_props"):
                    del item.metadata_props[:]
        for node in g.node:
            clean(node)
            for attr in node.attribute:
                attr.doc_string = ""
                if attr.HasField("g"):
                    graph(attr.g)
                for sub in attr.graphs:
                    graph(sub)

    model.doc_string = ""
    kept = [p for p in model.metadata_props if not p.key.startswith("pkg.torch.")]  # the exporter's own notes
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    graph(model.graph)
    for fn in model.functions:
        clean(fn)
        for node in fn.node:
            clean(node)
    return model
