"""ACAS Xu (VNN-COMP 2021) against the known truth: per verifier, correct holds, correct violated, wrong,
unknown, timeout, error and total time, on 30 instances with a 60 s timeout.

The 30 instances (20 holds, 10 violated) are those of issue 17: the truth is where nnenum and
alpha-beta-CROWN agree in the published results (github:stanleybak/vnncomp2021_results,
``results_csv/{nnenum,a-b-CROWN}.csv``); they include the six on which ``unsound-pgd`` said holds
(ACASXU_run2a_1_5, 3_6, 5_5, 5_6 with prop_2; 1_9 with prop_7; 2_9 with prop_8) and prop_5 to prop_10.
The networks and properties are read from a clone of github:stanleybak/vnncomp2021 (a work tree or a
bare repository, read with ``git show``)::

    HARNESS_VNNCOMP2021=/path/to/vnncomp2021 python bench/acasxu.py                 # every verifier
    HARNESS_VNNCOMP2021=/path/to/vnncomp2021 python bench/acasxu.py milp marabou --jobs 1 --out acas.json

Without the clone it says so and exits 0. Each verifier runs as the verification suite runs it: one
process per instance (:func:`harness.verify.process.run_verifier`), on the network normalized as the
benchmark reader normalizes it; a ``violated`` counts as correct only when its witness replays in
onnxruntime. Time figures depend on the machine's load: run with ``--jobs 1`` on a quiet machine.

Measured 2026-12-03 10:14-10:21 UTC on a quiet machine (load 1.9: one other job niced), same code, 60 s
timeout, one at a time: ``milp`` 15 correct holds, 10 correct violated, 0 wrong, 0 unknown, 5 timeout
(25/30, 83%), 395 s in all.

Measured 2026-12-03 (``milp`` after the numpy branch and bound: no torch import, forward symbolic
bounds, best-first splitting) on the same 2 shared cores at load 6 to 14, 60 s timeout, one at a time:
``milp`` 13 correct holds, 9 correct violated, 0 wrong, 0 unknown, 8 timeout (22/30, 73%), 738 s.
The 8 timeouts are 1_9/prop_7 (violated), 1_1/prop_6, 3_3/prop_9, 3_5/prop_1, 5_9/prop_1,
1_1/prop_2, 3_3/prop_2 and 4_2/prop_2 (holds). ``--sample N --seed S`` draws N further instances with agreed truth
from github:stanleybak/vnncomp2021_results (``HARNESS_VNNCOMP2021_RESULTS``); not yet measured.

Measured 2026-12-02 on 2 shared cores at load 9 to 11 (six other sessions running tests), so each
verifier process got a fraction of a core; 60 s timeout, one instance at a time:

============  =============  ================  =====  =======  =======  ==========
verifier      correct holds  correct violated  wrong  unknown  timeout  total time
============  =============  ================  =====  =======  =======  ==========
milp          12             9                 0      0        9        952 s
marabou       7              6                 0      0        17       1170 s
crown         1              0                 0      29       0        112 s
pgd           0              7                 0      23       0        299 s
unsound-pgd   20             2                 8      0        0        250 s
============  =============  ================  =====  =======  =======  ==========
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: (network, property, truth): nnenum and alpha-beta-CROWN agree (VNN-COMP 2021 results).
INSTANCES = [
    ("1_5", "prop_2", "violated"), ("3_6", "prop_2", "violated"), ("5_5", "prop_2", "violated"),
    ("5_6", "prop_2", "violated"), ("1_9", "prop_7", "violated"), ("2_9", "prop_8", "violated"),
    ("1_7", "prop_3", "violated"), ("1_8", "prop_4", "violated"), ("2_1", "prop_2", "violated"),
    ("4_9", "prop_2", "violated"),
    ("1_1", "prop_6", "holds"), ("1_1", "prop_5", "holds"), ("3_3", "prop_9", "holds"), ("4_5", "prop_10", "holds"),
    ("1_1", "prop_1", "holds"), ("2_3", "prop_1", "holds"), ("3_5", "prop_1", "holds"), ("4_6", "prop_1", "holds"),
    ("5_9", "prop_1", "holds"), ("1_1", "prop_2", "holds"), ("1_7", "prop_2", "holds"), ("3_3", "prop_2", "holds"),
    ("4_2", "prop_2", "holds"), ("1_1", "prop_3", "holds"), ("2_4", "prop_3", "holds"), ("3_6", "prop_3", "holds"),
    ("4_9", "prop_3", "holds"), ("1_1", "prop_4", "holds"), ("3_9", "prop_4", "holds"), ("5_3", "prop_4", "holds"),
]
VERIFIERS = ("milp", "marabou", "crown", "ibp", "pgd", "unsound-pgd")
DEFAULT_CLONE = "/work/.mirror/stanleybak+vnncomp2021/repo"
DEFAULT_RESULTS = "/work/.mirror/stanleybak+vnncomp2021_results/repo"


def network(name: str) -> str:
    return f"ACASXU_run2a_{name}_batch_2000.onnx"


def fetch(clone: Path, files: set[str], folder: Path) -> None:
    """Copy ``benchmarks/acasxu/<file>`` from a work tree, or from a bare repository with ``git show``."""
    for name in sorted(files):
        tree = clone / "benchmarks" / "acasxu" / name
        data = tree.read_bytes() if tree.is_file() else subprocess.run(
            ["git", "-C", str(clone), "show", f"HEAD:benchmarks/acasxu/{name}"], capture_output=True,
            check=True).stdout
        (folder / name).write_bytes(data)


def sample(results: Path, n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` ACAS Xu instances other than the 30, drawn with ``seed`` from those whose published verdicts
    agree (:func:`harness.verify.truth.read_truth`'s rule, on the results repository's ``results_csv``)."""
    import random

    from harness.verify.truth import read_truth

    folder = Path(tempfile.mkdtemp(prefix="acasxu-results-"))
    tree = results / "results_csv"
    if tree.is_dir():
        folder = tree
    else:  # a bare repository: its results_csv/*.csv through git
        names = subprocess.run(["git", "-C", str(results), "ls-tree", "--name-only", "HEAD", "results_csv/"],
                               capture_output=True, check=True, text=True).stdout.split()
        for name in names:
            data = subprocess.run(["git", "-C", str(results), "show", f"HEAD:{name}"], capture_output=True,
                                  check=True).stdout
            (folder / Path(name).name).write_bytes(data)
    known = {f"{network(n)[:-5]}-{p}" for n, p, _ in INSTANCES}
    pool = []
    for name, truth in sorted(read_truth(folder, "acasxu").items()):
        if truth.verdict is None or name in known:
            continue
        net, prop = name.rsplit("-", 1)  # ACASXU_run2a_<a>_<b>_batch_2000-prop_<k>
        pool.append((net.removeprefix("ACASXU_run2a_").removesuffix("_batch_2000"), prop, truth.verdict))
    return random.Random(seed).sample(pool, min(n, len(pool)))


def classify(truth: str, result: str, valid: bool | None) -> str:
    if result == "holds":
        return "correct holds" if truth == "holds" else "wrong"
    if result == "violated":
        return "correct violated" if truth == "violated" and valid else "wrong"
    return result  # unknown, timeout, error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("verifiers", nargs="*", default=list(VERIFIERS))
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--jobs", type=int, default=1, help="instances run at once (1 for time figures)")
    parser.add_argument("--out", type=Path, default=None, help="write every verdict as JSON here")
    parser.add_argument("--limit", type=int, default=0, help="only the first N instances")
    parser.add_argument("--only", default="", help="only these instances, e.g. 1_1:prop_1,3_6:prop_2")
    parser.add_argument("--sample", type=int, default=0,
                        help="instead of the 30: N further instances drawn at random from those with agreed truth")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample's draw")
    args = parser.parse_args()
    clone = Path(os.environ.get("HARNESS_VNNCOMP2021", DEFAULT_CLONE))
    if not clone.exists():
        print(f"skipped: no clone of github:stanleybak/vnncomp2021 at {clone} (set HARNESS_VNNCOMP2021)")
        return 0
    from harness.plugin.manager import load_host
    from harness.verify.normalize import normalized
    from harness.verify.process import run_verifier
    from harness.verify.replay import check_witness
    from harness.verify.vnnlib import load

    instances = INSTANCES[: args.limit or None]
    if args.sample:
        results = Path(os.environ.get("HARNESS_VNNCOMP2021_RESULTS", DEFAULT_RESULTS))
        if not results.exists():
            print(f"skipped: no clone of github:stanleybak/vnncomp2021_results at {results} "
                  "(set HARNESS_VNNCOMP2021_RESULTS)")
            return 0
        instances = sample(results, args.sample, args.seed)
    if args.only:
        wanted = {tuple(item.split(":")) for item in args.only.split(",")}
        instances = [inst for inst in instances if inst[:2] in wanted]
    host = load_host()
    work = Path(tempfile.mkdtemp(prefix="acasxu-"))
    fetch(clone, {network(n) for n, _, _ in instances} | {f"{p}.vnnlib" for _, p, _ in instances}, work)
    nets = {n: normalized(work / network(n), work / "cache") for n, _, _ in instances}
    rows, summary = [], {}
    for name in args.verifiers:
        reg = host.registry.get("verifier", name)
        ok, why = reg.spec.available({})
        if not ok:
            print(f"{name}: not available ({why})")
            continue

        def one(k: int, inst: tuple, _spec=reg.spec, _name=name) -> dict:
            n, p, truth = inst
            v = run_verifier(_spec, {}, nets[n], work / f"{p}.vnnlib", args.timeout,
                             workdir=work / "runs" / _name / str(k))
            valid = check_witness(nets[n], load(work / f"{p}.vnnlib"), v.witness).valid \
                if v.result == "violated" else None
            return {"verifier": _name, "network": network(n), "property": p, "truth": truth, "result": v.result,
                    "outcome": classify(truth, v.result, valid), "time_s": round(v.time_s, 2), "error": v.error}

        t0 = time.monotonic()
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            done = list(pool.map(lambda ki: one(*ki), enumerate(instances)))
        rows += done
        counts = {o: sum(r["outcome"] == o for r in done) for o in
                  ("correct holds", "correct violated", "wrong", "unknown", "timeout", "error")}
        counts["decided"] = counts["correct holds"] + counts["correct violated"]
        counts["time_s"] = round(sum(r["time_s"] for r in done), 1)
        counts["wall_s"] = round(time.monotonic() - t0, 1)
        summary[name] = counts
        print(f"{name:12s} " + "  ".join(f"{k}: {v}" for k, v in counts.items()), flush=True)
        for r in done:
            if r["outcome"] == "wrong" or r["outcome"] == "error":
                print(f"    {r['outcome']}: {r['network']} {r['property']} ({r['truth']}): {r['result']} {r['error']}")
    holds = sum(t == "holds" for *_, t in instances)
    print(f"\n{len(instances)} instances ({holds} holds), timeout {args.timeout:g} s, {args.jobs} at a time, "
          f"on {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f})")
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "verdicts": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
