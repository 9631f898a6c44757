"""Built-in verifiers: ``ibp`` and ``crown`` (sound, incomplete), ``milp`` (complete, HiGHS),
``pgd`` (a falsifier), and ``unsound-pgd``, a deliberately unsound canary for soundness benchmarks.

Each runs in its own process per instance (the host's ``harness.verify.child``); this module
imports nothing heavy, the verify functions do.
"""

from __future__ import annotations

import time
from typing import Any

from harness.api import Param, VerifierSpec, VerifyContext, hookimpl


def _unsupported(exc: Exception) -> dict:
    return {"result": "unknown", "error": f"unsupported network: {exc}", "info": {"unsupported": str(exc)}}


def _load(ctx: VerifyContext) -> tuple[Any, Any]:
    from harness_plugins.verifiers.network import load_network

    net = load_network(ctx.onnx_path)
    prop = ctx.property()
    if prop.n_inputs != net.n_inputs or prop.n_outputs != net.n_outputs:
        raise ValueError(f"the property declares {prop.n_inputs} inputs and {prop.n_outputs} outputs, the "
                         f"network has {net.n_inputs} and {net.n_outputs}")
    return net, prop


def verify_bounds(ctx: VerifyContext, method: str) -> dict:
    """Prove every box of the property with IBP or CROWN bounds: ``holds``, else ``unknown``."""
    from harness_plugins.verifiers.bounds import prove
    from harness_plugins.verifiers.network import Unsupported

    try:
        net, prop = _load(ctx)
    except Unsupported as exc:
        return _unsupported(exc)
    margins = []
    for lower, upper, outputs in prop.boxes():
        proved, info = prove(net, lower, upper, outputs, method)
        margins.append(info["margins"])
        if not proved:
            return {"result": "unknown", "info": {"method": method, "margins": margins}}
    return {"result": "holds", "info": {"method": method, "margins": margins}}


def verify_ibp(ctx: VerifyContext) -> dict:
    """Interval bound propagation."""
    return verify_bounds(ctx, "ibp")


def verify_crown(ctx: VerifyContext) -> dict:
    """CROWN's backward linear relaxation."""
    return verify_bounds(ctx, "crown")


def verify_milp(ctx: VerifyContext) -> dict:
    """Exact MILP encoding per box, solved by HiGHS within the timeout."""
    from harness_plugins.verifiers.milp import verify_box
    from harness_plugins.verifiers.network import Unsupported

    try:
        net, prop = _load(ctx)
    except Unsupported as exc:
        return _unsupported(exc)
    outcome: dict = {"result": "holds", "info": {"boxes": []}}
    for lower, upper, outputs in prop.boxes():
        res = verify_box(net, lower, upper, outputs, ctx.deadline - 1.0)
        outcome["info"]["boxes"].append(res.get("info", {}))
        if res["result"] == "violated":
            return {**res, "info": outcome["info"]}
        if res["result"] != "holds":
            outcome["result"] = res["result"]
    return outcome


def _attack(ctx: VerifyContext, restarts: int, schedule: tuple) -> tuple[dict | None, dict]:
    """Run PGD on every box; a ``violated`` result with its witness, or ``None``."""
    import numpy as np
    import torch

    from harness.verify.attack import stack_outputs, strong_pgd
    from harness_plugins.verifiers.network import Unsupported
    from harness_plugins.verifiers.torchnet import to_torch

    try:
        net, prop = _load(ctx)
    except Unsupported as exc:
        return _unsupported(exc), {}
    torch.set_num_threads(1)
    forward = to_torch(net)
    generator = torch.Generator().manual_seed(int(ctx.params.get("seed", 0)))
    best = float("inf")
    for lower, upper, outputs in prop.boxes():
        if time.monotonic() > ctx.deadline - 1.0:
            return {"result": "timeout", "info": {"best_margin": best}}, {}
        a, b = stack_outputs(outputs, torch.float64)
        lo = torch.tensor(lower, dtype=torch.float64).unsqueeze(0)
        hi = torch.tensor(upper, dtype=torch.float64).unsqueeze(0)
        x, m = strong_pgd(forward, lo, hi, a, b, restarts=restarts, schedule=schedule, generator=generator)
        best = min(best, float(m[0]))
        if float(m[0]) <= 0:
            witness = x[0].numpy()
            out = net.forward(witness)[0]
            if any(np.all(oa @ out <= ob) for oa, ob in outputs):
                return {"result": "violated", "witness": witness, "outputs": out,
                        "info": {"margin": float(m[0])}}, {}
    return None, {"best_margin": best}


def verify_pgd(ctx: VerifyContext) -> dict:
    """A falsifier: ``violated`` with a witness when PGD finds one, else ``unknown`` (never ``holds``)."""
    p = ctx.params
    found, info = _attack(ctx, p["restarts"], tuple((s, p["steps"]) for s in (0.25, 0.1, 0.02)))
    return found or {"result": "unknown", "info": info}


def verify_unsound_pgd(ctx: VerifyContext) -> dict:
    """DELIBERATELY UNSOUND: ``holds`` whenever a short PGD attack finds no counterexample.

    Attack-based "verification" is the classic soundness bug; a benchmark that hides its
    counterexamples from attacks must catch this verifier on every planted instance.
    """
    p = ctx.params
    found, info = _attack(ctx, p["restarts"], ((0.25, p["steps"]),))
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
    description="exact mixed-integer encoding of small ReLU networks, scipy.optimize.milp (HiGHS): complete",
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
    """Register ``ibp``, ``crown``, ``milp``, ``pgd`` and ``unsound-pgd``."""
    for spec in (IBP, CROWN, MILP, PGD, UNSOUND_PGD):
        register(spec)
