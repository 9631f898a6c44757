"""Torch helpers every layer that touches a network shares: seeding and single-file ONNX export.

torch is imported inside each function, so importing this module stays instant.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any


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
    return path
