"""Model inputs: one float32 array, or several named arrays (a *feed*).

Image models take one array ``(N, C, H, W)``; transformers take named integer arrays
(``{"input_ids": (N, T) int64, "attention_mask": (N, T) int64}``). A :class:`harness.api.Split`'s
``x`` is either; every array of a feed shares the batch dimension. These helpers let the host,
the suites and the backends treat both alike, so that no caller branches on the kind of model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The name a single-array input goes by in a feed (runner protocol, ONNX feeds).
DEFAULT_NAME = "input"


def is_feed(x: Any) -> bool:
    """Whether ``x`` is a feed of named arrays (a mapping) rather than one array."""
    return isinstance(x, Mapping)


def batch_len(x: Any) -> int:
    """The batch size (length of the first dimension) of an array or a feed."""
    if is_feed(x):
        return len(next(iter(x.values())))
    return len(x)


def take(x: Any, idx: Any) -> Any:
    """Rows ``idx`` (a slice or an index array) of an array or of every array of a feed."""
    if is_feed(x):
        return {k: v[idx] for k, v in x.items()}
    return x[idx]


def normalize(arr: Any) -> Any:
    """One contiguous array with the dtype models take: float32 for floats, int64 for integers."""
    import numpy as np

    arr = np.asarray(arr)
    dtype = np.int64 if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_ else np.float32
    return np.ascontiguousarray(arr, dtype=dtype)


def prepare(x: Any) -> Any:
    """An array or a feed with every array :func:`normalize`\\ d."""
    if is_feed(x):
        return {k: normalize(v) for k, v in x.items()}
    return normalize(x)


def named(x: Any, names: list[str] | None = None) -> dict:
    """A feed ``{name: array}``; a single array is named ``names[0]`` (or :data:`DEFAULT_NAME`).

    A feed whose names differ from ``names`` (a model exported with other argument names) is
    matched by position when the counts agree.
    """
    if not is_feed(x):
        return {(names or [DEFAULT_NAME])[0]: normalize(x)}
    feed = prepare(x)
    if names and set(feed) != set(names) and len(feed) == len(names):
        return dict(zip(names, feed.values()))
    return feed


def describe(x: Any) -> list[dict]:
    """``[{"name", "dtype", "shape"}]`` of one sample of each input (no batch dimension)."""
    return [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape[1:])} for k, v in named(x).items()]


def torch_args(x: Any) -> tuple:
    """The positional torch tensors a model is called with: the array, or the feed's arrays in order."""
    import torch

    if is_feed(x):
        return tuple(torch.from_numpy(v) for v in prepare(x).values())
    return (torch.from_numpy(normalize(x)),)


def dynamic_shapes(x: Any) -> tuple:
    """``torch.export`` dynamic shapes: a dynamic batch axis, and a dynamic sequence axis (axis 1)
    on the integer inputs of a feed (token ids, attention masks)."""
    import numpy as np
    import torch

    batch = torch.export.Dim("batch")
    if not is_feed(x):
        return ({0: batch},)
    seq = torch.export.Dim("seq", max=4096)
    return tuple({0: batch, 1: seq} if v.ndim >= 2 and np.issubdtype(v.dtype, np.integer) else {0: batch}
                 for v in prepare(x).values())
