"""Witness validation by replay in onnxruntime, as VNN-COMP checks counterexamples.

A ``violated`` verdict scores only with a valid witness: its inputs lie within ``INPUT_TOL`` of
the property's box, and the network, run on them by onnxruntime's CPU provider, produces
outputs in the unsafe set. The outputs a verifier reports are not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.verify.vnnlib import Property

#: VNN-COMP's tolerance on a witness's inputs.
INPUT_TOL = 1e-4


@dataclass(frozen=True)
class WitnessCheck:
    """Whether a witness is valid, why not, and the outputs the replay produced."""

    valid: bool
    reason: str
    outputs: Any = None


class Network:
    """An ONNX network in onnxruntime (CPU provider), run on flat VNN-LIB-ordered inputs."""

    def __init__(self, onnx_path: str | Path):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        # Symbolic dimensions (a dynamic batch) take 1: one witness at a time.
        self.input_shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        self.n_inputs = 1
        for d in self.input_shape:
            self.n_inputs *= d

    def __call__(self, x: Any) -> Any:
        """Outputs (flat, float64) for one flat input vector."""
        import numpy as np

        feed = np.asarray(x, dtype=np.float32).reshape(self.input_shape)
        out = self.session.run(None, {self.input_name: feed})[0]
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def batch(self, xs: Any) -> Any:
        """Outputs ``(N, n_outputs)`` for inputs ``(N, n_inputs)`` (the model must take a batch)."""
        import numpy as np

        xs = np.asarray(xs, dtype=np.float32)
        shape = [len(xs), *self.input_shape[1:]]
        out = self.session.run(None, {self.input_name: xs.reshape(shape)})[0]
        return np.asarray(out, dtype=np.float64).reshape(len(xs), -1)


def check_witness(network: Network | str | Path, prop: Property, witness: Any,
                  input_tol: float = INPUT_TOL) -> WitnessCheck:
    """Replay ``witness`` on ``network`` and check it against ``prop``."""
    import numpy as np

    if witness is None:
        return WitnessCheck(False, "no witness")
    if isinstance(witness, dict):
        witness = witness.get("x")
    try:
        x = np.asarray(witness, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return WitnessCheck(False, "the witness's inputs are not numbers")
    n_in = len(prop.lower)
    if x.size != n_in:
        return WitnessCheck(False, f"the witness has {x.size} inputs, the property {n_in}")
    if not np.all(np.isfinite(x)):
        return WitnessCheck(False, "the witness has a non-finite input")
    if not prop.contains(list(x), atol=input_tol):
        return WitnessCheck(False, f"the witness lies outside the property's box (tolerance {input_tol:g})")
    net = network if isinstance(network, Network) else Network(network)
    if net.n_inputs != n_in:
        return WitnessCheck(False, f"the network takes {net.n_inputs} inputs, the property declares {n_in}")
    y = net(x)
    if y.size != prop.num_outputs:
        return WitnessCheck(False, f"the network gives {y.size} outputs, the property declares {prop.num_outputs}",
                            outputs=y)
    if not prop.is_unsafe(list(y)):
        return WitnessCheck(False, "replayed in onnxruntime, the witness's outputs satisfy the property", outputs=y)
    return WitnessCheck(True, "replayed in onnxruntime: violates the property", outputs=y)
