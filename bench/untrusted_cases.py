"""Hostile and damaged files against the harness: how many cases are handled, how many are defects.

Run it on a checkout (``PYTHONPATH=CHECKOUT:CHECKOUT/plugins python bench/untrusted_cases.py``); it
uses only calls that exist before and after the untrusted-files work (build_artifact, Artifact,
load_plan, the CLI), so the same script gives the "before" and "after" columns of
docs/reliability.md. Each case prints ``handled`` or ``DEFECT`` with what happened; the last line
is the count per area. Nothing here asserts on time; it takes about a minute on a quiet machine.

A case is handled when: no marker file appears (code execution); the entry is rebuilt and the
next use succeeds (corrupt cache); the message names the file and the reason, with exit status 2
for a suite file and no "Errno"/"EOFError"/traceback (bad input files).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

RESULTS: dict[str, list[tuple[str, bool, str]]] = {}


def case(area: str, name: str, ok: bool, detail: str) -> None:
    RESULTS.setdefault(area, []).append((name, ok, detail))
    print(f"{'handled' if ok else 'DEFECT '}  [{area}] {name}: {detail[:160]}", flush=True)


def clear(text: str, path: Path) -> bool:
    return str(path) in text and "Errno" not in text and "EOFError" not in text and "Traceback" not in text


def main() -> None:
    import torch
    from hostile import ExecPayload, SystemPayload, write_module_payload

    from harness.build.artifacts import build_artifact, load_dataset
    from harness.core.identity import Component
    from harness.plugin.manager import load_host
    from harness.plugin.specs import Artifact

    tmp = Path(tempfile.mkdtemp(prefix="untrusted-cases-"))
    registry = load_host().registry
    cache = tmp / "cache"
    from harness.plugin.params import validate

    mlp = validate(registry.get("model", "mlp").spec.params, {})
    digits = validate(registry.get("dataset", "digits").spec.params, {})
    splits = load_dataset(registry, Component("digits", digits), cache)
    prune = validate(registry.get("method", "global-magnitude").spec.params, {"sparsity": 0.5})
    cell = {"model": {"name": "mlp", "params": mlp}, "dataset": {"name": "digits", "params": digits},
            "method": {"name": "global-magnitude", "params": prune}, "seed": 0}
    art = build_artifact(registry, cell, splits, cache)
    marker = tmp / "marker"

    # ---------------------------------------------------------------- code from files
    for label, payload in (("exec", ExecPayload), ("os.system", SystemPayload)):
        write_module_payload(art.path / "module.pt", marker, payload)
        try:
            Artifact.open(art.path).load_torch()
            why = "loaded"
        except Exception as exc:  # noqa: BLE001 - what the harness raised is the detail
            why = f"{type(exc).__name__}: {exc}"
        case("code", f"cached module.pt, {label} payload", not marker.exists(), why)
        marker.unlink(missing_ok=True)
    try:  # whoever can write the cache can rewrite recorded hashes too (after the change only)
        from harness.core.files import record_hashes
    except ImportError:
        record_hashes = None
    if record_hashes is not None:
        write_module_payload(art.path / "module.pt", marker)
        record_hashes(art.path)
    try:
        Artifact.open(art.path).load_torch()
        why = "loaded"
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}"
    case("code", "cached module.pt, exec payload, hashes rewritten to match", not marker.exists(), why)
    marker.unlink(missing_ok=True)
    (art.path / "module.pt").write_bytes(pickle.dumps(ExecPayload(marker)))
    try:
        Artifact.open(art.path).load_torch()
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}"
    case("code", "cached module.pt, legacy raw pickle", not marker.exists(), why)
    marker.unlink(missing_ok=True)
    shutil.rmtree(art.path)

    bench = tmp / "bench"
    bench.mkdir()
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    from harness.core.torchio import export_onnx
    from harness.verify.vnnlib import robustness

    export_onnx(net, bench / "model.onnx", (2,))
    (bench / "prop.vnnlib").write_text(robustness([0.0, 0.0], [0.1, 0.1], 0, 2).text())
    (bench / "instances.csv").write_text("model.onnx,prop.vnnlib,10\n")
    torch.save([(torch.zeros(2), 0, None)], bench / "data.pt")
    write_module_payload(bench / "model.pt", marker)
    from harness.build.benchmarks import compress
    from harness.verify.benchmarks import read_folder

    try:
        compress(read_folder(bench, cache), registry, Component("global-magnitude", prune), 0, cache)
        why = "compressed"
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}"
    case("code", "benchmark folder model.pt, exec payload", not marker.exists(), why)
    marker.unlink(missing_ok=True)
    torch.save(net, bench / "model.pt")
    torch.save(ExecPayload(marker), bench / "data.pt")
    try:
        read_folder(bench, cache)
        why = "read"
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}"
    case("code", "benchmark folder data.pt, exec payload", not marker.exists(), why)
    marker.unlink(missing_ok=True)
    wfile = tmp / "evil-weights.pt"
    torch.save(ExecPayload(marker), wfile)
    wcell = {**cell, "model": {"name": "mlp", "params": {**mlp, "weights": str(wfile)}}}
    try:
        build_artifact(registry, wcell, splits, cache)
        why = "built"
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}"
    case("code", "model weights file, exec payload", not marker.exists(), why)
    marker.unlink(missing_ok=True)

    # ---------------------------------------------------------------- corrupt cache entries
    for kind, name in (("artifacts", "module.pt"), ("artifacts", "artifact.json"), ("artifacts", "model.onnx"),
                       ("weights", "weights.pt"), ("weights", "weights.json")):
        for sub in ("artifacts", "weights"):  # each case from a fresh cache: a defect must not leak into the next
            shutil.rmtree(cache / sub, ignore_errors=True)
        art = build_artifact(registry, cell, splits, cache)
        entries = [p for p in (cache / kind).iterdir() if not p.name.startswith(".") and (p / name).is_file()]
        for entry in entries:
            data = (entry / name).read_bytes()
            (entry / name).write_bytes(data[: len(data) // 2])
        try:
            again = build_artifact(registry, cell, splits, cache)
            again.load_torch()
            json.loads((again.path / "artifact.json").read_text())
            intact = all((e / name).stat().st_size >= 1 and _loads(e / name) for e in entries)
            why = "rebuilt" if intact else "used as it is (still truncated)"
            ok = intact
        except Exception as exc:  # noqa: BLE001
            ok, why = False, f"{type(exc).__name__}: {str(exc)[:120]}"
        case("cache", f"truncated {kind}/{name}", ok, why)
    for sub in ("artifacts", "weights"):
        shutil.rmtree(cache / sub, ignore_errors=True)
    art = build_artifact(registry, cell, splits, cache)
    parent = cache / "artifacts"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = parent / f".{art.key}x.{dead.pid}"
    stale.mkdir()
    old = 0
    os.utime(stale, (old, old))
    shutil.rmtree(art.path)
    build_artifact(registry, cell, splits, cache)
    case("cache", "temp folder of a killed run (a day old)", not stale.exists(),
         "removed" if not stale.exists() else "left behind")

    # ---------------------------------------------------------------- bad input files
    cli = [sys.executable, "-m", "harness.cli"]
    env = dict(os.environ, HARNESS_CACHE_DIR=str(cache))
    suites = tmp / "suites"
    suites.mkdir()
    for label, content in (("binary suite file", b"\xff\xfe\x00\x01"), ("suite file with a bad byte", b"x = 1\n\x80")):
        path = suites / "bin.toml"
        path.write_bytes(content)
        p = subprocess.run([*cli, "run", path, "--db", tmp / "x.db"], capture_output=True, text=True, env=env)
        case("input", label, p.returncode == 2 and clear(p.stderr, path), f"exit {p.returncode}: {p.stderr[-200:]}")
    p = subprocess.run([*cli, "run", suites, "--db", tmp / "x.db"], capture_output=True, text=True, env=env)
    case("input", "a folder as suite file", p.returncode == 2 and clear(p.stderr, suites), f"exit {p.returncode}")
    (suites / "adir").mkdir()
    (suites / "net.onnx").write_bytes(b"x")
    matrix = ('name = "p"\\nseeds = [0]\\n[[matrix]]\\nmodels = [{m}]\\ndatasets = ["digits"]\\n'
              'methods = ["dense"]\\nbackends = ["onnxruntime-cpu"]\\nsuites = ["size"]\\n')
    from harness.plan.suitefile import load_plan

    def plan_error(models: str) -> str:
        """The validation error of a suite file with these models; else the models' parameters as planned."""
        path = suites / "s.toml"
        path.write_text(matrix.replace("\\n", "\n").format(m=models))
        try:
            plan = load_plan(path, registry)
        except Exception as exc:  # noqa: BLE001
            return str(exc)
        return "planned: " + json.dumps([c.model.params for c in plan.cells])

    for label, models, want in (
        ("weights = a folder", '{ name = "mlp", weights = "adir" }', "adir"),
        ("onnx-file path = a folder", '{ name = "onnx-file", path = "adir" }', "adir"),
        ("onnx-file path missing", '{ name = "onnx-file", path = "missing.onnx" }', "missing.onnx"),
    ):
        msg = plan_error(models)
        refused = not msg.startswith("planned")
        case("input", f"{label}: refused at validation", refused and want in msg, msg)
    cwd = Path.cwd()
    os.chdir(tmp)
    try:
        msg = plan_error('{ name = "onnx-file", path = "net.onnx" }')
    finally:
        os.chdir(cwd)
    case("input", "onnx-file relative path: taken from the suite file's folder",
         str(suites / "net.onnx") in msg, msg)

    for label, content in (("empty", b""), ("random", os.urandom(3000)), ("truncated", "trunc"), ("folder", "dir")):
        wpath = tmp / f"w-{label}.pt"
        if content == "trunc":
            torch.save(torch.nn.Linear(64, 64).state_dict(), wpath)
            wpath.write_bytes(wpath.read_bytes()[:2000])
        elif content == "dir":
            wpath.mkdir()
        else:
            wpath.write_bytes(content)
        try:
            build_artifact(registry, {**cell, "model": {"name": "mlp", "params": {**mlp, "weights": str(wpath)}}},
                           splits, cache)
            ok, why = False, "accepted"
        except Exception as exc:  # noqa: BLE001
            why = f"{type(exc).__name__}: {exc}"
            ok = clear(why, wpath)
        case("input", f"{label} weights file", ok, why.splitlines()[0] if why else why)
    opath = tmp / "random.onnx"
    opath.write_bytes(os.urandom(500))
    ocell = {**cell, "model": {"name": "onnx-file", "params": {"path": str(opath)}},
             "method": {"name": "dense", "params": {}}}
    try:
        build_artifact(registry, ocell, splits, cache)
        ok, why = False, "accepted"
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}"
        ok = clear(why, opath)
    case("input", "random onnx-file", ok, why.splitlines()[0])

    print()
    print("| area | cases | handled | defects |")
    print("|---|---|---|---|")
    for area, rows in RESULTS.items():
        handled = sum(ok for _, ok, _ in rows)
        print(f"| {area} | {len(rows)} | {handled} | {len(rows) - handled} |")
    shutil.rmtree(tmp, ignore_errors=True)


def _loads(path: Path) -> bool:
    """Whether a cache file reads whole (JSON parses, a torch/ONNX file is not cut short)."""
    if path.suffix == ".json":
        try:
            json.loads(path.read_text())
            return True
        except ValueError:
            return False
    if path.suffix == ".onnx":
        import onnx

        try:
            onnx.load(str(path))
            return True
        except Exception:  # noqa: BLE001
            return False
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception:  # noqa: BLE001 - a whole module file needs the allowlist: the size is enough
        return path.stat().st_size > 1000 and path.read_bytes()[-22:-18] == b"PK\x05\x06"


if __name__ == "__main__":
    main()
