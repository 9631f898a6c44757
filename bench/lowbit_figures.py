"""Bytes of the quantized layers' weights in a MatMulNBits ONNX file against their fp32 size.

``onnx_bytes`` counts the whole file, embeddings and float layers included; this script counts, for every
``MatMulNBits`` node, its packed codes, scales and zero points against ``K x N x 4`` bytes of fp32 weights.

    python bench/lowbit_figures.py CACHE_DIR      # every matmul-nbits artifact under CACHE_DIR/artifacts
    python bench/lowbit_figures.py FILE.onnx ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def quantized_bytes(path: Path) -> dict:
    """``{"layers", "packed_bytes", "fp32_bytes", "ratio", "file_bytes"}`` of one ONNX file."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    packed = fp32 = layers = 0
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        layers += 1
        fp32 += int(attrs["K"]) * int(attrs["N"]) * 4
        packed += sum(numpy_helper.to_array(inits[n]).nbytes for n in node.input[1:4] if n in inits)
    return {"layers": layers, "packed_bytes": packed, "fp32_bytes": fp32,
            "ratio": round(packed / fp32, 4) if fp32 else None, "file_bytes": path.stat().st_size}


def artifacts(cache: Path) -> list[tuple[str, Path]]:
    """``(description, model.onnx)`` of every matmul-nbits artifact in the cache (its manifest's identity)."""
    out = []
    for manifest in sorted(cache.glob("artifacts/*/artifact.json")):
        ident = json.loads(manifest.read_text()).get("identity", {})
        method = ident.get("method", {})
        if method.get("name") == "matmul-nbits" and (manifest.parent / "model.onnx").is_file():
            out.append((f"{ident.get('model', {}).get('name')} {json.dumps(method.get('params'))}",
                        manifest.parent / "model.onnx"))
    return out


def main(argv: list[str]) -> None:
    """Print one JSON line per file."""
    for arg in argv:
        p = Path(arg)
        targets = [(p.name, p)] if p.suffix == ".onnx" else artifacts(p)
        for what, path in targets:
            print(json.dumps({"artifact": what, "file": str(path), **quantized_bytes(path)}))


if __name__ == "__main__":
    main(sys.argv[1:])
