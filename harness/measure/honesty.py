"""The cheap checks behind every ranked figure: outputs of the timed call (MLPerf TEST01) and agreement
with the reference backend, against per-precision tolerances.

The latency suite runs :func:`check_timed_call` on every cell, the accuracy suite
:func:`check_agreement` on its outputs, ``harness check-plugin`` both on a backend; whatever a suite
file names, so a backend whose timed call does not compute is flagged, not ranked. Reference outputs
are computed once per (artifact, inputs) and cached on disk (:func:`reference_outputs`).

*The timed call* of an in-process session (one with ``bind``, as :class:`InProcessSession` has) is
the call its timing loop times: the check binds it once on a buffer and changes the buffer's contents
in place between calls, so a call that returns an output computed earlier (at bind time, on its first
call, or cached by the input's identity) or a constant shows. Sessions of another runtime (a runner
process, CUDA graphs) are asked for their timing path's outputs (``timed_outputs``).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.core.identity import digest, fingerprint_arrays
from harness.core.paths import cache_dir
from harness.measure.reference import ATOL, RTOL, ReferenceSession, compare_outputs, runtime_for
from harness.plugin.specs import Measurement, MetricSpec

#: The catalogue's suite name of ``check_claims``, which the worker adds to every cell of an artifact.
CHECKS_SUITE = "checks"
#: The checks' own measurements: 1 passed, 0 failed, empty when the check could not run (then flagged
#: ``unchecked: ...``). The leaderboard ranks a figure only beside its suite's passed checks
#: (:data:`harness.query.columns.CHECKS_NEEDED`).
CHECK_METRICS = {
    "claims": MetricSpec("check_claims", "bool", True, "1 when the method's claims hold on the artifact "
                         "(measured once per artifact, every cell)"),
    "agreement": MetricSpec("check_agreement", "bool", True, "1 when the backend's outputs on the test split "
                            "agree with the reference backend's (every accuracy cell)"),
    "test01": MetricSpec("check_test01", "bool", True, "1 when the timed call's outputs on the rotated inputs "
                         "equal the reference's (MLPerf TEST01, every latency cell)"),
}

#: Per precision: ``(atol, rtol, min top-1 agreement, scaled)``. fp32 (and int8 artifacts, whose
#: runtimes may quantize activations a step apart) compare element by element as
#: :func:`numpy.allclose` does; fp32 kernels differ in summation order only (~1e-6 on logits). The
#: reduced precisions compare against the scale of the outputs: ``max |diff| <= atol + rtol x
#: max |reference|``, with ``rtol`` eight units of roundoff of the format (fp16 and tf32 keep 10
#: mantissa bits, u = 2**-11; bf16 7, u = 2**-8). Measured on the digits models, fp16 and bf16 on
#: torch land at 1-2 u of the output scale; elementwise rtol is no test for them, since logits near
#: zero carry the error of the large ones.
THRESHOLDS = {"fp32": (ATOL, RTOL, 0.99, False), "int8": (5e-2, 5e-2, 0.98, False),
              "fp16": (1e-5, 8 * 2 ** -11, 0.98, True), "tf32": (1e-5, 8 * 2 ** -11, 0.98, True),
              "bf16": (1e-5, 8 * 2 ** -8, 0.97, True)}


def precision(backend_params: Mapping[str, Any] | None, claims: Mapping[str, Any] | None) -> str:
    """The numeric precision outputs are compared at: the backend's ``dtype`` (fp16/bf16, tf32 for fp32
    with ``tf32``), int8 for artifacts claiming 8 or fewer weight bits, else fp32."""
    bparams = backend_params or {}
    dtype = bparams.get("dtype")
    if dtype in ("fp16", "bf16"):
        return dtype
    if dtype == "fp32" and bparams.get("tf32"):
        return "tf32"
    bits = (claims or {}).get("weight_bits")
    if isinstance(bits, (int, float)) and bits <= 8:
        return "int8"
    return "fp32"


def tolerance(prec: str, reference: Any) -> tuple[float, float, float, dict]:
    """``(atol, rtol, min top-1 agreement, info)`` for comparing outputs with ``reference`` at ``prec``."""
    import numpy as np

    atol, rtol, min_agree, scaled = THRESHOLDS[prec]
    if not scaled:
        return atol, rtol, min_agree, {"atol": atol, "rtol": rtol, "top1_agreement": min_agree}
    scale = float(np.max(np.abs(reference))) if np.size(reference) else 0.0
    bound = atol + rtol * scale
    return bound, 0.0, min_agree, {"atol": bound, "rtol": 0.0, "top1_agreement": min_agree,
                                   "rule": f"max |diff| <= {atol:g} + {rtol:.4g} x max |reference| ({scale:.4g})"}


def reference_outputs(artifact: Any, batches: Sequence[Any]) -> tuple[list, dict]:
    """The reference backend's outputs on each of ``batches``, and its session info.

    Cached under the cache folder (``checks/<artifact key>/``) by the batches' contents, so the
    backends and suites of one artifact share one computation; the cache is plain ``.npy`` arrays read
    without pickle, and an unreadable entry is computed again.
    """
    import numpy as np

    runtime = runtime_for(artifact)
    key = digest({"inputs": fingerprint_arrays(*batches), "runtime": runtime, "n": len(batches)})
    folder = cache_dir() / "checks" / str(artifact.key)
    path = folder / f"reference-{key}.npz"
    info = {"runtime": runtime, "reference": True, "cached": True}
    if path.is_file():
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
                outs = [data[f"out{i}"] for i in range(len(batches))]
            return outs, info
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a torn or foreign file: compute it again
    session = ReferenceSession(artifact, runtime)
    try:
        outs = [np.asarray(session.run(b)) for b in batches]
        info = {**session.info, "cached": False}
    finally:
        session.close()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **{f"out{i}": o for i, o in enumerate(outs)})
    os.replace(tmp, path)
    return outs, info


def _copy(x: Any) -> Any:
    import numpy as np

    return {k: np.array(v, copy=True) for k, v in x.items()} if isinstance(x, Mapping) else np.array(x, copy=True)


def _refill(buffer: Any, x: Any) -> None:
    import numpy as np

    if isinstance(buffer, Mapping):
        for k in buffer:
            np.copyto(buffer[k], x[k])
    else:
        np.copyto(buffer, x)


def _shape(x: Any) -> Any:
    import numpy as np

    return tuple(sorted((k, np.shape(v)) for k, v in x.items())) if isinstance(x, Mapping) else np.shape(x)


def timed_call_outputs(session: Any, batches: Sequence[Any]) -> tuple[list | None, str]:
    """The outputs the session's timed call gives on each of ``batches``, and how they were taken.

    With ``bind`` (an in-process session): one call bound on a buffer, the buffer refilled in place
    with each batch before each call (``"bound call, inputs changed in place"``); batches of different
    shapes get a call each. Else the session's ``timed_outputs`` (``"timed_outputs"``). ``None`` when
    the session offers neither.
    """
    import numpy as np

    if callable(getattr(session, "bind", None)):
        if len({_shape(b) for b in batches}) == 1:
            buffer = _copy(batches[0])
            call = session.bind(buffer)
            outs = []
            for b in batches:
                _refill(buffer, b)
                outs.append(np.array(call(), copy=True))
            return outs, "bound call, inputs changed in place"
        return [np.array(session.bind(_copy(b))(), copy=True) for b in batches], "bound call per input"
    if callable(getattr(session, "timed_outputs", None)):
        return [np.asarray(o) for o in session.timed_outputs(list(batches))], "timed_outputs"
    return None, "none"


@dataclass
class Check:
    """One check's verdict: ``ok`` ``None`` when it could not run (``message`` says why)."""

    name: str
    ok: bool | None
    message: str
    info: dict = field(default_factory=dict)

    @property
    def flag(self) -> str | None:
        """The leaderboard flag: ``soundness: ...`` when failed, ``unchecked: ...`` when not run."""
        if self.ok is None:
            return f"unchecked: {self.name}: {self.message}"
        return None if self.ok else f"soundness: {self.name}: {self.message}"


def compare_each(outputs: Sequence[Any], reference: Sequence[Any], prec: str, *, top1: bool = False) -> dict:
    """Each output against its reference at precision ``prec``: how many differ, the worst difference."""
    import numpy as np

    flat_ref = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1) for r in reference])
    atol, rtol, min_agree, thresholds = tolerance(prec, flat_ref)
    bad, worst, whys, agree = 0, 0.0, [], []
    for out, ref in zip(outputs, reference):
        res = compare_outputs(out, ref, atol=atol, rtol=rtol, top1=top1)
        if not res["ok"]:
            bad += 1
            whys.append(res["why"])
        worst = max(worst, res.get("max_abs_diff", float("inf")))
        if "top1_agreement" in res:
            agree.append((res["top1_agreement"], len(np.asarray(ref).reshape(-1, np.shape(ref)[-1]))))
    out = {"n": len(reference), "bad": bad, "max_abs_diff": worst, "thresholds": thresholds, "precision": prec,
           "why": whys[0] if whys else "", "min_top1_agreement": min_agree}
    if agree:
        out["top1_agreement"] = sum(a * n for a, n in agree) / max(1, sum(n for _, n in agree))
    return out


def _distinct(arrays: Sequence[Any]) -> int:
    import numpy as np

    return len({np.asarray(a).tobytes() for a in arrays})


def check_timed_call(session: Any, batches: Sequence[Any], reference: Sequence[Any], prec: str) -> Check:
    """MLPerf's TEST01 on the timed call: its outputs on ``batches`` (rotated inputs) against the
    reference outputs for the same inputs."""
    outs, how = timed_call_outputs(session, batches)
    if outs is None:
        return Check("test01", None, "the session has neither bind (an in-process timed call) nor timed_outputs: "
                     "the outputs of its timing path cannot be checked", {"source": how})
    if len(outs) != len(reference):
        return Check("test01", False, f"the timing path gave {len(outs)} outputs for {len(reference)} inputs",
                     {"source": how})
    res = compare_each(outs, reference, prec)
    info = {"source": how, **res}
    if not res["bad"]:
        return Check("test01", True, f"outputs under timing equal the reference on {res['n']} rotated inputs "
                     f"(max abs diff {res['max_abs_diff']:.2g})", info)
    msg = f"outputs under timing differ from the reference on {res['bad']} of {res['n']} rotated inputs"
    mine, theirs = _distinct(outs), _distinct(reference)
    if mine < theirs:
        msg += (f": the timed call does not run the model (it gave {mine} distinct output(s) for {theirs} distinct "
                "inputs: an output computed earlier, cached or constant)")
    else:
        msg += f" ({prec}): {res['why']}"
    return Check("test01", False, msg, info)


def check_agreement(outputs: Sequence[Any], reference: Sequence[Any], prec: str, *, top1: bool,
                    runtime: str) -> Check:
    """The backend's outputs (batch by batch) against the reference backend's on the same batches."""
    res = compare_each(outputs, reference, prec, top1=top1)
    info = {"reference": runtime, **res}
    agree = res.get("top1_agreement")
    if res["bad"]:
        return Check("agreement", False, f"disagrees with the reference ({runtime}, {prec}) on {res['bad']} of "
                     f"{res['n']} batches: {res['why']}", info)
    if agree is not None and agree < res["min_top1_agreement"]:
        return Check("agreement", False, f"disagrees with the reference ({runtime}, {prec}): top1_agreement "
                     f"{agree:.4g} < {res['min_top1_agreement']:g}", info)
    return Check("agreement", True, f"agrees with the reference ({runtime}) on {res['n']} batches "
                 f"(max abs diff {res['max_abs_diff']:.2g})", info)


def claims_fix(claim: str, claimed: Any, measured: Any) -> str:
    """What to change when a claim is false of the artifact: the method's apply or its claims."""
    shown = f"{measured:.4g}" if isinstance(measured, float) else repr(measured)
    return (f"make apply produce what claims(params) says ({claim} {claimed!r}), or make claims(params) say what "
            f"apply produces ({claim} {shown})")


def claims_check(artifact: Any) -> Check:
    """The method's claims measured on the artifact (:func:`harness.measure.claims.check_artifact`), once per
    artifact: the verdict is cached beside the reference outputs as JSON."""
    import json

    path = cache_dir() / "checks" / str(artifact.key) / "claims.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            return Check("claims", saved["ok"], saved["message"], saved.get("info") or {})
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: measure again
    from harness.measure.claims import check_artifact

    report = check_artifact(artifact)
    fails = report.failures()
    info = {"claims": artifact.manifest.get("claims"), "checks": [c.as_dict() for c in report.checks],
            "unchecked": report.unchecked}
    if fails:
        f = fails[0]
        message = (f"claim {f.claim} {f.claimed} not true of the artifact: measured {f.measured} ({f.format}, "
                   f"{f.detail}): {claims_fix(f.claim, f.claimed, f.measured)}"
                   + (f", and {len(fails) - 1} more" if len(fails) > 1 else ""))
        check = Check("claims", False, message, info)
    else:
        check = Check("claims", True, f"{len(report.checks)} claim check(s) hold", info)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".claims.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"ok": check.ok, "message": check.message, "info": check.info}, default=str))
    os.replace(tmp, path)
    return check


def check_measurement(check: Check, params: Mapping[str, Any] | None = None) -> Measurement:
    """The measurement recording a check's verdict (``check_<name>``), flagged when it failed or did not run."""
    value = None if check.ok is None else float(check.ok)
    return Measurement(CHECK_METRICS[check.name].name, value, "bool", params=dict(params or {}),
                       info={"message": check.message, **check.info}, flag=check.flag)
