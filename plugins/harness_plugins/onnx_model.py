"""``onnx-file``: bring your own ONNX model, for models that never were torch modules.

The file is the dense model as it is: ``dense`` passes it through, methods that work on ONNX
graphs (``int8-dynamic``) compress it, and methods that need a torch module are skipped by the
planner with the reason. Its inputs must match the dataset's (one float32 image array, or named
arrays such as ``input_ids`` and ``attention_mask``) with a dynamic batch dimension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import ModelContext, ModelSpec, Param, hookimpl


def build_onnx_file(ctx: ModelContext) -> Any:
    """The model's ONNX file, checked to exist and to parse.

    The planner has resolved ``path`` against the suite file's folder and checked that it is a
    readable file; what is left to find here is a file that is not an ONNX model.
    """
    path = Path(ctx.params["path"]).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"onnx-file: {path} " + ("is a folder, not a file" if path.is_dir() else "does not exist"))
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - onnx raises protobuf, validation and OS errors alike
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"onnx-file: {path} is not a valid ONNX model (truncated, empty or another format?): "
                         f"{text}") from None
    return path


ONNX_FILE = ModelSpec(
    name="onnx-file", build=build_onnx_file, provides=("onnx",),
    params=(Param("path", str, path="file", help="the .onnx file (weights inside, a dynamic batch dimension)"),),
    weights="inside the ONNX file",
    description="your own ONNX model; ONNX methods apply to it, torch methods are skipped with the reason",
)


@hookimpl
def harness_register_models(register):
    """Register ``onnx-file``."""
    register(ONNX_FILE)
