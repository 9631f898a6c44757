"""Built-in verifiers: ``ibp`` and ``crown`` (sound, incomplete), ``milp`` (complete, HiGHS),
``pgd`` (a falsifier), ``unsound-pgd``, a deliberately unsound canary for soundness benchmarks,
and ``marabou`` (complete, Marabou through the optional ``maraboupy``: :mod:`.marabou`).

Each runs in its own process per instance (the host's ``harness.verify.child``) as
``verify(onnx_path, vnnlib_path, timeout_s, **params)``; this module imports nothing heavy,
the verify functions do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.api import Param, VerifierSpec, hookimpl, load_vnnlib, stack_outputs, strong_pgd


def _unsupported(exc: Exception) -> dict:
    return {"result": "unknown", "error": f"unsupported network: {exc}", "info": {"unsupported": str(exc)}}


def _load(onnx_path: Path, vnnlib_path: Path) -> tuple[Any, Any, list, list]:
    """The network, the property, its input boxes ``[(lower, upper), ...]`` and output conjunctions
    as numpy arrays (a property holds when it holds on every box)."""
    import numpy as np

    from harness_plugins.verifiers.network import load_network

    net = load_network(onnx_path)
    prop = load_vnnlib(vnnlib_path)
    if len(prop.lower) != net.n_inputs or prop.num_outputs != net.n_outputs:
        raise ValueError(f"the property declares {len(prop.lower)} inputs and {prop.num_outputs} outputs, the "
                         f"network has {net.n_inputs} and {net.n_outputs}")
    boxes = [(np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)) for lo, hi in prop.input_boxes()]
    return net, prop, boxes, prop.matrices()


def _witness(x: Any, y: Any) -> dict:
    return {"x": [float(v) for v in x], "y": [float(v) for v in y]}


def verify_bounds(onnx_path: Path, vnnlib_path: Path, method: str) -> dict:
    """Prove the property with IBP or CROWN bounds: ``holds``, else ``unknown``."""
    from harness_plugins.verifiers.bounds import prove
    from harness_plugins.verifiers.network import Unsupported

    try:
        net, _, boxes, outputs = _load(onnx_path, vnnlib_path)
    except Unsupported as exc:
        return _unsupported(exc)
    margins = []
    for lower, upper in boxes:
        proved, info = prove(net, lower, upper, outputs, method)
        margins.append(info["margins"])
        if not proved:
            return {"result": "unknown", "info": {"method": method, "margins": info["margins"],
                                                  "boxes": len(boxes), "unproved_box": len(margins) - 1}}
    return {"result": "holds", "info": {"method": method, "margins": margins[0] if len(boxes) == 1 else margins,
                                        "boxes": len(boxes)}}


def verify_ibp(onnx_path: Path, vnnlib_path: Path, timeout_s: float) -> dict:
    """Interval bound propagation."""
    return verify_bounds(onnx_path, vnnlib_path, "ibp")


def verify_crown(onnx_path: Path, vnnlib_path: Path, timeout_s: float) -> dict:
    """CROWN's backward linear relaxation."""
    return verify_bounds(onnx_path, vnnlib_path, "crown")


def verify_milp(onnx_path: Path, vnnlib_path: Path, timeout_s: float, warm_start: bool = True,
                split: bool = True) -> dict:
    """Complete: a falsifier's warm start, then input splitting with CROWN down to sub-boxes the MILP
    (HiGHS) decides exactly (:mod:`.split`), within the timeout. Without ``split`` (or on a network
    with max-pools) the MILP takes each input box whole, as before."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the bounds are many small matrix products, which threads only slow down (on a
    # shared machine, several times over); one verifier process per instance is the unit of parallelism.
    with threadpool_limits(limits=1, user_api="blas"):
        return _verify_milp(onnx_path, vnnlib_path, timeout_s, warm_start, split)


def _verify_milp(onnx_path: Path, vnnlib_path: Path, timeout_s: float, warm_start: bool, split: bool) -> dict:
    from harness_plugins.verifiers.milp import verify_box
    from harness_plugins.verifiers.network import Unsupported
    from harness_plugins.verifiers.split import search, splittable

    deadline = time.monotonic() + timeout_s - 0.5
    try:
        net, prop, boxes, outputs = _load(onnx_path, vnnlib_path)
    except Unsupported as exc:
        return _unsupported(exc)
    replays = _replayer(onnx_path, prop)
    chain = splittable(net)
    if warm_start:  # a counterexample PGD finds in a second or two spares the whole search
        schedule = tuple((s, 100) for s in (0.25, 0.1, 0.02))
        found = _np_attack(net, boxes, outputs, schedule) if chain else \
            _attack(onnx_path, vnnlib_path, timeout_s, 50, schedule, 0, loaded=(net, boxes, outputs))[0]
        if found is not None and found.get("result") == "violated" and replays(found["witness"]["x"]):
            found["info"] = {**found.get("info", {}), "by": "warm start (pgd)"}
            return found
    if split and chain:
        res = search(net, boxes, outputs, deadline, replays,
                     lambda lo, hi, terms, dl: verify_box(net, lo, hi, terms, dl),
                     _batch_attack(net, outputs) if warm_start else None)
        if res["result"] == "violated":
            res["witness"] = _witness(res.pop("witness"), res.pop("outputs"))
        return res
    undecided, infos = None, []
    for lower, upper in boxes:  # holds when every box holds, violated when one is
        res = verify_box(net, lower, upper, outputs, deadline)
        infos.append(res["info"])
        if res["result"] == "violated":
            res["witness"] = _witness(res.pop("witness"), res.pop("outputs"))
            return res
        if res["result"] != "holds":
            undecided = undecided or res["result"]
            if res["result"] == "timeout":
                break
    return {"result": undecided or "holds", "info": infos[0] if len(infos) == 1 else {"boxes": infos}}


def _np_attack(net: Any, boxes: list, outputs: list, schedule: tuple) -> dict | None:
    """The warm start on an affine / ReLU chain, in numpy (:mod:`.npattack`, no torch import): a
    ``violated`` result with its witness, or ``None``."""
    import numpy as np

    from harness_plugins.verifiers.npattack import pgd, stack

    a, b = stack(outputs)
    lo, hi = np.stack([box[0] for box in boxes]), np.stack([box[1] for box in boxes])
    x, m = pgd(net, lo, hi, a, b, restarts=50, schedule=schedule, rng=np.random.default_rng(0))
    k = int(m.argmin())
    if m[k] <= 0:
        out = net.forward(x[k])[0]
        if any(np.all(oa @ out <= ob) for oa, ob in outputs):
            return {"result": "violated", "witness": _witness(x[k], out), "info": {"margin": float(m[k])}}
    return None


def _batch_attack(net: Any, outputs: list) -> Any:
    """``attack(lower, upper)``: a short PGD in each of a batch of sub-boxes, its best points (numpy)."""
    import numpy as np

    from harness_plugins.verifiers.npattack import pgd, stack

    a, b = stack(outputs)
    rng = np.random.default_rng(1)

    def attack(lower: Any, upper: Any) -> Any:
        return pgd(net, lower, upper, a, b, restarts=1, schedule=((0.25, 8), (0.05, 8)), rng=rng)[0]

    return attack


def _replayer(onnx_path: Path, prop: Any) -> Any:
    """``replays(x)``: whether ``x`` is a counterexample as the scorer will check it (onnxruntime)."""
    from harness.api import ReplayNetwork

    replay = ReplayNetwork(onnx_path)

    def replays(x: Any) -> bool:
        return prop.contains(list(x)) and prop.is_unsafe(list(replay(x)))

    return replays


def _attack(onnx_path: Path, vnnlib_path: Path, timeout_s: float, restarts: int, schedule: tuple,
            seed: int, loaded: tuple | None = None) -> tuple[dict | None, dict]:
    """Run PGD on the property's boxes; a ``violated`` result with its witness, or ``None``
    (``loaded``: the network, boxes and conjunctions when the caller has read them)."""
    import numpy as np
    import torch

    from harness_plugins.verifiers.network import Unsupported
    from harness_plugins.verifiers.torchnet import to_torch

    if loaded is not None:
        net, boxes, outputs = loaded
    else:
        try:
            net, _, boxes, outputs = _load(onnx_path, vnnlib_path)
        except Unsupported as exc:
            return _unsupported(exc), {}
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(seed)
    a, b = stack_outputs(outputs, torch.float64)
    # Every box of the input set at once: a batch of boxes, each attacked from its own random starts.
    lo = torch.tensor(np.stack([box[0] for box in boxes]), dtype=torch.float64)
    hi = torch.tensor(np.stack([box[1] for box in boxes]), dtype=torch.float64)
    x, m = strong_pgd(to_torch(net), lo, hi, a, b, restarts=restarts, schedule=schedule, generator=generator)
    k = int(m.argmin())
    best = float(m[k])
    if best <= 0:
        witness = x[k].numpy()
        out = net.forward(witness)[0]
        if any(np.all(oa @ out <= ob) for oa, ob in outputs):
            return {"result": "violated", "witness": _witness(witness, out), "info": {"margin": best}}, {}
    return None, {"best_margin": best}


def verify_pgd(onnx_path: Path, vnnlib_path: Path, timeout_s: float, restarts: int = 50, steps: int = 100,
               seed: int = 0) -> dict:
    """A falsifier: ``violated`` with a witness when PGD finds one, else ``unknown`` (never ``holds``)."""
    found, info = _attack(onnx_path, vnnlib_path, timeout_s, restarts, tuple((s, steps) for s in (0.25, 0.1, 0.02)),
                          seed)
    return found or {"result": "unknown", "info": info}


def verify_unsound_pgd(onnx_path: Path, vnnlib_path: Path, timeout_s: float, restarts: int = 2, steps: int = 10,
                       seed: int = 0) -> dict:
    """DELIBERATELY UNSOUND: ``holds`` whenever a short PGD attack finds no counterexample.

    Attack-based "verification" is the classic soundness bug; a benchmark that hides its
    counterexamples from attacks must catch this verifier on every planted instance.
    """
    found, info = _attack(onnx_path, vnnlib_path, timeout_s, restarts, ((0.25, steps),), seed)
    if found is not None:
        return found
    return {"result": "holds", "info": {**info, "note": "deliberately unsound: no attack succeeded"}}


def _scipy_available(params: Any) -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("scipy") is None:
        return False, "scipy is not installed"
    return True, ""


def _seed() -> Param:
    return Param("seed", int, default=0, min=0, grid=False, help="seed of the random starts")


IBP = VerifierSpec(
    name="ibp", verify=verify_ibp,
    description="interval bound propagation: sound, incomplete (holds or unknown)",
)
CROWN = VerifierSpec(
    name="crown", verify=verify_crown,
    description="CROWN linear relaxation bounds: sound, incomplete (holds or unknown)",
)
MILP = VerifierSpec(
    name="milp", verify=verify_milp, complete=True, available=_scipy_available,
    params=(Param("warm_start", bool, default=True, grid=False,
                  help="try a short PGD attack first: a replaying counterexample ends the search"),
            Param("split", bool, default=True, grid=False,
                  help="branch on the input box with CROWN, the MILP on sub-boxes with few unstable ReLUs")),
    description="complete for ReLU networks: input splitting with CROWN bounds down to an exact mixed-integer "
                "encoding, scipy.optimize.milp (HiGHS), after a falsifier's warm start",
)
PGD = VerifierSpec(
    name="pgd", verify=verify_pgd,
    params=(Param("restarts", int, default=50, min=1, help="random starts per step size"),
            Param("steps", int, default=100, min=1, help="steps per step size (0.25, 0.1, 0.02 of the half-width)"),
            _seed()),
    description="falsifier: multi-restart PGD; violated with a witness or unknown, never holds",
)
UNSOUND_PGD = VerifierSpec(
    name="unsound-pgd", verify=verify_unsound_pgd,
    params=(Param("restarts", int, default=2, min=1, help="random starts"),
            Param("steps", int, default=10, min=1, help="PGD steps"), _seed()),
    description="DELIBERATELY UNSOUND canary: says holds when a short PGD attack fails; a soundness "
                "benchmark must catch it",
)


@hookimpl
def harness_register_verifiers(register):
    """Register ``ibp``, ``crown``, ``milp``, ``pgd``, ``unsound-pgd`` and ``marabou``."""
    from harness_plugins.verifiers.marabou import MARABOU

    for spec in (IBP, CROWN, MILP, PGD, UNSOUND_PGD, MARABOU):
        register(spec)
