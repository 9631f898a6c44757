"""The ``vnncomp`` verifier: any VNN-COMP competition tool, plugged in by configuration alone.

A suite file names the tool's folder, which holds the competition's scripts::

    verifiers = [{ name = "vnncomp", tool = "tools/my-verifier" }]

and the harness calls ``prepare_instance.sh`` and ``run_instance.sh`` as the competition does
(:mod:`harness.verify.process`), reading the verdict and counterexample from the result file the
tool writes. The tool brings its own environment. Registered as a built-in plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.api import Param, VerifierSpec, hookimpl

RUN_SCRIPT = "run_instance.sh"


def tool_folder(params: Mapping[str, Any]) -> Path:
    """The tool's folder (the suite-file planner has made a relative path absolute)."""
    return Path(params["tool"])


def available(params: Mapping[str, Any]) -> tuple[bool, str]:
    """The folder must hold ``run_instance.sh``."""
    folder = tool_folder(params)
    if not (folder / RUN_SCRIPT).is_file():
        return False, f"no {RUN_SCRIPT} in {folder}"
    return True, ""


#: A small real tool in VNN-COMP's layout: random sampling in onnxruntime, ``sat`` with the
#: witness it finds, else ``unknown`` (a falsifier never says ``unsat``).
SAMPLER = """import sys
import numpy as np
import onnxruntime as ort
from harness.api import load_vnnlib

onnx_path, vnnlib_path, result_path, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
prop = load_vnnlib(vnnlib_path)
sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0]
shape = [d if isinstance(d, int) else 1 for d in inp.shape]
rng = np.random.default_rng(0)
boxes = prop.input_boxes()  # one box, or each box of a union (VNN-LIB input disjunctions)
samples = np.concatenate([np.array(lo) + rng.random((2000 // len(boxes) + 1, len(lo))) * (np.array(hi) - lo)
                          for lo, hi in boxes])
for x in samples:
    y = sess.run(None, {inp.name: x.astype(np.float32).reshape(shape)})[0].reshape(-1)
    if prop.is_unsafe(list(y)):
        pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(x)] + [f"(Y_{j} {float(v)!r})" for j, v in enumerate(y)]
        open(result_path, "w").write("sat\\n(" + "\\n ".join(pairs) + ")\\n")
        break
else:
    open(result_path, "w").write("unknown\\n")
"""


def example(workdir: Path) -> dict:
    """A sampling tool in VNN-COMP's layout, written under ``workdir`` (for ``harness check-plugin``)."""
    import sys

    tool = Path(workdir) / "sampler"
    tool.mkdir(parents=True, exist_ok=True)
    (tool / "sample.py").write_text(SAMPLER)
    (tool / "prepare_instance.sh").write_text("#!/bin/bash\n# VNN-COMP: prepare_instance.sh v1 CATEGORY ONNX VNNLIB\n"
                                              "test -f \"$3\" && test -f \"$4\"\n")
    (tool / "run_instance.sh").write_text(
        "#!/bin/bash\n# VNN-COMP: run_instance.sh v1 CATEGORY ONNX VNNLIB RESULT_FILE TIMEOUT\n"
        f"exec {sys.executable} \"$(dirname \"$0\")/sample.py\" \"$3\" \"$4\" \"$5\" \"$6\"\n")
    return {"tool": str(tool)}


VNNCOMP = VerifierSpec(
    name="vnncomp", tool=tool_folder, available=available, example=example,
    params=(
        Param("tool", str, grid=False, path="folder",
              help="the tool's folder, with run_instance.sh (VNN-COMP's scripts)"),
        Param("category", str, default="", grid=False,
              help="the benchmark category passed to the scripts (default: the network's folder name)"),
        Param("prepare_timeout_s", float, default=300.0, min=1.0, grid=False,
              help="time allowed to prepare_instance.sh (not counted in the verdict's time)"),
        Param("label", str, default="", grid=False,
              help="a name for this tool on the leaderboard (its parameters identify it either way)"),
    ),
    description="a VNN-COMP tool folder (prepare_instance.sh / run_instance.sh), in its own environment",
)


@hookimpl
def harness_register_verifiers(register):
    """Register ``vnncomp``."""
    register(VNNCOMP)
