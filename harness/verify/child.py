"""``python -m harness.verify.child``: one Python verifier on one instance, in this fresh process.

Reads a JSON request on stdin (verifier, parameters, network, property, timeout, result file),
loads the plugins, calls ``verify(onnx_path, vnnlib_path, timeout_s, **params)`` with the time
left after this interpreter's start, and writes a VNN-COMP result file, with a JSON sidecar
(``result.json``) for what that file cannot hold: the verifier's ``info`` and errors.

Anything that keeps the verifier from answering (the plugins fail to load, the verifier is not
registered, it raises, it returns something that is not a verdict) is the ``error`` verdict with the
reason and the stage it happened in, never ``unknown``: ``unknown`` is the verifier's own answer.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from harness.core.errors import describe_exception
from harness.verify.verdicts import ERROR, RESULTS, write_result_file


def _answer(result_path: Path, result: str, witness=None, info=None, error=None) -> None:
    x = y = None
    if isinstance(witness, dict):
        x, y = witness.get("x"), witness.get("y")
    elif witness is not None:
        x = witness
    write_result_file(result_path, result, x, y)
    result_path.with_suffix(".json").write_text(json.dumps({"info": info or {}, "error": error}, default=str))


def main() -> int:
    """Serve one request; exit status 0 once an answer (even ``unknown``) is written."""
    req = json.loads(sys.stdin.read())
    result_path = Path(req["result"])
    # The time already spent (this interpreter's start) counts against the verifier.
    remaining = req["timeout_s"] - max(0.0, time.time() - req.get("started", time.time()))
    stage = "loading the plugins"
    try:
        from harness.plugin.manager import load_host

        host = load_host(req.get("plugins_dir"))
        stage = "finding the verifier"
        spec = host.registry.verifier(req["verifier"])
        stage = "verifying"
        out = spec.verify(Path(req["onnx"]), Path(req["vnnlib"]), max(remaining, 0.1), **req["params"])
    except Exception as exc:  # noqa: BLE001 - no answer: an error verdict with its reason, never unknown
        reason = describe_exception(exc)
        _answer(result_path, ERROR, error=reason if stage == "verifying" else f"{stage} failed: {reason}",
                info={"stage": stage, "traceback": traceback.format_exc()[-4000:]})
        return 0
    if not isinstance(out, dict) or out.get("result") not in RESULTS:
        shown = out.get("result") if isinstance(out, dict) else out
        _answer(result_path, ERROR, error=f"verifier {req['verifier']} returned {shown!r}; expected a dict "
                                           f"with result one of {', '.join(RESULTS)}")
        return 0
    _answer(result_path, out["result"], out.get("witness"), out.get("info"), out.get("error"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
