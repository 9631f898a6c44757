"""Verification benchmarks: generated (``soundnessbench``) or imported from a folder (``folder``),
each instance labelled with what is known about it, and compressed by a method when asked.

A benchmark is a set of instances: an ONNX network, a VNN-LIB property and a timeout (VNN-COMP's
``instances.csv``). Each instance has a *kind*:

- ``planted``: a counterexample is known and, replayed in onnxruntime on *this* network, violates
  the property (SoundnessBench's hidden counterexamples). Any ``holds`` is a soundness bug.
- ``clean``: the generator kept it with no counterexample found by a strong attack
  (SoundnessBench's ``data.pt`` entries without one).
- ``peer_violated`` / ``peer_holds``: other tools agree on the verdict (``truth``: a VNN-COMP
  results folder or an ``instance,truth`` file, :mod:`harness.verify.truth`), with no witness known.
  A ``holds`` on ``peer_violated`` is scored and flagged as on ``planted``.
- ``unlabelled``: nothing is known (a VNN-COMP benchmark folder; a planted instance whose
  counterexample no longer violates after compression).

A suite file names benchmarks in ``[[verification]]`` tables::

    benchmarks = [{ name = "soundnessbench", arch = ["mlp", "cnn"], planted = 6, clean = 6 },
                  { name = "folder", path = "benchmarks/acasxu", truth = "vnncomp2021_results" }]

Generated benchmarks and compressed networks are cached by content hash, like artifacts.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.files import cached
from harness.core.identity import Component, digest
from harness.core.safeload import load_state
from harness.plugin.params import Param

PLANTED, CLEAN, UNLABELLED = "planted", "clean", "unlabelled"
PEER_VIOLATED, PEER_HOLDS = "peer_violated", "peer_holds"
KINDS = (PLANTED, CLEAN, PEER_VIOLATED, PEER_HOLDS, UNLABELLED)
#: Kinds on which a ``holds`` is wrong: a counterexample is known, or peers agree one exists.
VIOLATED_KINDS = (PLANTED, PEER_VIOLATED)


@dataclass
class Instance:
    """One verification instance and what is known about it."""

    index: int
    onnx: Path
    vnnlib: Path
    timeout: float
    kind: str
    counterexample: Any = None  # flat inputs of the known counterexample (planted)
    note: str = ""
    truth: dict | None = None  # what peers answered (:meth:`harness.verify.truth.Truth.as_dict`)
    #: the network as the benchmark ships it (``onnx`` is its normalized copy, :mod:`harness.verify.normalize`)
    source: Path | None = None
    #: sha256 of the shipped network's bytes: what identifies the instance's network
    sha256: str = ""


@dataclass
class Benchmark:
    """A materialized benchmark: its folder, its instances, and how it was made."""

    name: str
    root: Path
    instances: list[Instance]
    info: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Instances of each kind."""
        return {k: sum(i.kind == k for i in self.instances) for k in KINDS}


# ------------------------------------------------------------------ sources

_RECIPE_HELP = {
    "arch": "network architecture: mlp (d -> 2h -> h -> 2) or cnn (3x3 conv -> h -> 2)",
    "planted": "instances with a hidden counterexample to keep",
    "clean": "instances without one to keep",
    "epsilon": "L-infinity radius of every box",
    "data_range": "inputs lie in [-data_range, data_range]",
    "input_size": "features of the MLP; height and width of the CNN's single-channel input",
    "hidden": "hidden width h",
    "channels": "convolution channels of the CNN",
    "epochs": "training steps (full batch)",
    "lr": "Adam's peak learning rate (one-cycle schedule)",
    "attack_restarts": "random starts of the training attack",
    "attack_steps": "steps of the training attack",
    "window": "past attacks whose points stay in the training set",
    "eval_restarts": "random starts per step size of the final attack that decides what is hidden",
    "counter_margin": "margin by which each planted counterexample stays misclassified",
    "well": "radius of the well left around each planted counterexample, a fraction of epsilon (0: the "
            "architecture's, mlp 0.05, cnn 0.2)",
    "balance": "how planted-box losses average: mean, shortfall (over the samples that fall short) or auto "
               "(mlp mean, cnn shortfall)",
    "timeout": "per-instance timeout written to instances.csv (seconds)",
}


def _recipe_params() -> tuple[Param, ...]:
    from harness.verify.soundnessbench import ARCHS, BALANCES, Recipe

    out = []
    for f in dataclasses.fields(Recipe):
        if f.name == "seed":
            continue  # the suite file's seeds
        kind = type(f.default)
        extra: dict = {"choices": ARCHS} if f.name == "arch" else {"min": 0.0 if kind is float else 0}
        if f.name == "balance":
            extra = {"choices": BALANCES}
        if f.name in ("epsilon", "data_range", "lr", "timeout"):
            extra = {"min": 0.0, "min_exclusive": True}
        elif f.name in ("input_size", "hidden", "channels", "epochs", "attack_restarts", "attack_steps", "window",
                        "eval_restarts"):
            extra = {"min": 1}
        out.append(Param(f.name, kind, default=f.default, grid=f.name in ("arch", "epsilon", "planted", "clean",
                                                                               "input_size", "hidden", "channels"),
                         help=_RECIPE_HELP.get(f.name, ""), **extra))
    return tuple(out)


@dataclass(frozen=True)
class Source:
    """Where a benchmark comes from: its parameters and how to materialize it."""

    name: str
    params: tuple[Param, ...]
    description: str


def sources() -> dict[str, Source]:
    """The benchmark sources a ``[[verification]]`` table may name."""
    return {
        "soundnessbench": Source("soundnessbench", _recipe_params(),
                                 "generated: synthetic inputs, counterexamples planted and hidden from attacks"),
        "folder": Source("folder", (Param("path", str, grid=False, path="folder",
                                          help="a folder with instances.csv (or subfolders with one each)"),
                                    Param("truth", str, default="", grid=False, path="any",
                                          help="peer verdicts: a VNN-COMP results folder (results_csv/<tool>.csv) or "
                                               "an instance,truth file; agreed verdicts label the instances")),
                         "imported: a benchmark folder on disk in VNN-COMP or SoundnessBench layout"),
    }


def materialize(component: Component, seed: int, cache_dir: Path, log: Any = None,
                notes: list[str] | None = None) -> Benchmark:
    """The benchmark a suite-file entry names, generated or read (cached by content hash, verified).

    ``notes`` collects what happened to cache entries (a corrupt one rebuilt), for the cell's info.
    """
    from harness import __version__

    if component.name == "soundnessbench":
        from harness.verify.soundnessbench import Recipe, generate

        recipe = Recipe(**component.params, seed=seed)
        key = digest({"source": "soundnessbench", "recipe": dataclasses.asdict(recipe), "harness": __version__}, 24)
        final = cached(cache_dir / "benchmarks" / key, lambda tmp: generate(tmp, recipe, log=log), notes,
                       what="generated benchmark")
        bench = read_folder(final, cache_dir, name=f"soundnessbench/{recipe.arch}")
        bench.info["generated"] = json.loads((final / "benchmark.json").read_text())
        return bench
    if component.name == "folder":
        bench = read_folder(Path(component.params["path"]), cache_dir)
        if component.params.get("truth"):
            label_by_peers(bench, Path(component.params["truth"]))
        return bench
    raise KeyError(f"unknown benchmark source {component.name!r} (known: {', '.join(sources())})")


# ------------------------------------------------------------------ reading a folder


def _unpacked(path: Path, cache_dir: Path) -> Path:
    """``path``, or its ``.gz`` sibling decompressed into the cache (VNN-COMP ships gzipped files)."""
    if path.is_file():
        return path
    packed = path.with_name(path.name + ".gz")
    if not packed.is_file():
        raise FileNotFoundError(f"{path} (nor {packed.name}) does not exist")
    out = cache_dir / "benchmarks" / "unpacked" / digest({"file": str(packed.resolve()),
                                                           "mtime": packed.stat().st_mtime_ns}) / path.name
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{time.time_ns()}")
        tmp.write_bytes(gzip.decompress(packed.read_bytes()))
        tmp.rename(out)
    return out


def _ground_truth(folder: Path, rows: list[tuple[str, str, float]]) -> list[Any] | None:
    """SoundnessBench's ``data.pt`` (``[(x0, label, x_cex or None), ...]``) aligned with ``rows``."""
    data_file = folder / "data.pt"
    if not data_file.is_file():
        return None

    data = load_state(data_file, what="benchmark labels")
    aligned: list[Any] = []
    for i, (_, vnnlib, _) in enumerate(rows):
        stem = Path(vnnlib).name.split(".")[0]
        j = int(stem) if stem.isdigit() and int(stem) < len(data) else i
        if j >= len(data):
            return None
        cex = data[j][2]
        aligned.append(None if cex is None else cex.detach().numpy().astype("float64").reshape(-1))
    return aligned


def read_folder(root: Path, cache_dir: Path, name: str | None = None) -> Benchmark:
    """A benchmark folder: ``instances.csv`` at its root or in each subfolder (sorted).

    Rows are ``onnx,vnnlib,timeout`` relative to their csv's folder (files may be gzipped). A
    ``data.pt`` beside a csv labels its rows (planted when it holds a counterexample, else clean);
    without one, rows are unlabelled. Every network is normalized once into the cache
    (:func:`harness.verify.normalize.normalized`): the instance's ``onnx`` is that copy, which every
    verifier and the witness replay read; ``source`` and ``sha256`` are the shipped file's.
    """
    from harness.core.identity import file_sha256
    from harness.verify.normalize import normalized

    root = Path(root)
    csvs = [root / "instances.csv"] if (root / "instances.csv").is_file() else \
        sorted(p / "instances.csv" for p in root.iterdir() if (p / "instances.csv").is_file()) if root.is_dir() else []
    if not csvs:
        raise FileNotFoundError(f"no instances.csv in {root} or its subfolders")
    instances: list[Instance] = []
    for csv_file in csvs:
        folder = csv_file.parent
        with open(csv_file, newline="") as f:
            rows = [(r[0].strip(), r[1].strip(), float(r[2]) if len(r) > 2 and r[2].strip() else 0.0)
                    for r in csv.reader(f) if r and r[0].strip() and not r[0].startswith("#")]
        truth = _ground_truth(folder, rows)
        networks: dict[Path, tuple[Path, str]] = {}
        for k, (onnx, vnnlib, timeout) in enumerate(rows):
            cex = truth[k] if truth is not None else None
            kind = UNLABELLED if truth is None else (PLANTED if cex is not None else CLEAN)
            shipped = _unpacked(folder / onnx, cache_dir)
            if shipped not in networks:
                sha = file_sha256(shipped)
                networks[shipped] = (normalized(shipped, cache_dir, sha), sha)
            net, sha = networks[shipped]
            instances.append(Instance(index=len(instances), onnx=net, vnnlib=_unpacked(folder / vnnlib, cache_dir),
                                      timeout=timeout, kind=kind, counterexample=cex, source=shipped, sha256=sha))
    bench = Benchmark(name=name or root.name, root=root, instances=instances, info={"csv": [str(c) for c in csvs]})
    confirm_planted(bench)
    return bench


def confirm_planted(bench: Benchmark) -> int:
    """Replay every planted counterexample on its network; one that no longer violates makes its
    instance unlabelled. Returns how many were removed."""
    from harness.verify.replay import Network, check_witness
    from harness.verify.vnnlib import load

    nets: dict[Path, Network] = {}
    removed = 0
    for inst in bench.instances:
        if inst.kind != PLANTED:
            continue
        net = nets.setdefault(inst.onnx, Network(inst.onnx))
        check = check_witness(net, load(inst.vnnlib), inst.counterexample)
        if not check.valid:
            inst.kind = UNLABELLED
            inst.note = f"planted counterexample does not violate on this network: {check.reason}"
            removed += 1
    return removed


def label_by_peers(bench: Benchmark, truth_path: Path) -> int:
    """Label unlabelled instances with the peers' agreed verdicts read from ``truth_path``; returns how many.

    Every instance the file names keeps what peers said in ``Instance.truth`` (disputed ones too);
    ``bench.info["truth"]`` records the file, its sha256 and the counts.
    """
    from harness.core.identity import file_sha256
    from harness.verify.truth import read_truth
    from harness.verify.vnncomp2021 import HOLDS, instance_name

    try:
        truths = read_truth(truth_path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"benchmark {bench.name}: truth {truth_path}: {exc}") from None
    labelled = disputed = 0
    for inst in bench.instances:
        t = truths.get(instance_name(inst.onnx.name, inst.vnnlib.name))
        if t is None:
            continue
        inst.truth = t.as_dict()
        disputed += t.disputed
        if inst.kind == UNLABELLED and t.verdict is not None:
            inst.kind = PEER_HOLDS if t.verdict == HOLDS else PEER_VIOLATED
            labelled += 1
    digest_of = file_sha256(truth_path) if truth_path.is_file() else \
        digest({f.name: file_sha256(f) for f in sorted(truth_path.rglob("*.csv"))}, 64)
    bench.info["truth"] = {"path": str(truth_path), "sha256": digest_of, "labelled": labelled, "disputed": disputed}
    return labelled
