"""A suite's contract: declared metrics, and Measurements of them from a toy cell."""

from __future__ import annotations

import math

from harness.devkit import toy
from harness.devkit.conformance.clauses import fail, jsonable, skip
from harness.devkit.conformance.contract import Contract
from harness.plugin.specs import CellContext, Measurement, Skip


class SuiteContract(Contract):
    """Checks one registered suite on the ``toy-identity`` artifact, with the reference backend."""

    kind = "suite"
    schema_attr = "settings"

    def check(self) -> None:
        """settings, metrics declared, run, measurements."""
        c = self.c
        c.run("settings", self.parameters)
        c.run("metrics declared", self.declared)
        c.run("run", self.run_suite, needs=["settings"])
        c.run("measurements", self.measurements, needs=["run"])

    def declared(self) -> str:
        if not self.spec.metrics:
            fail("metrics=() declares nothing: list a MetricSpec(name, unit, higher_is_better, description) for "
                 "each metric, so the leaderboard knows its unit and which way is better")
        return ", ".join(f"{m.name} ({m.unit})" for m in self.spec.metrics)

    def run_suite(self) -> str:
        from harness.measure.reference import ReferenceSession

        workdir = self.workdir / "cell"
        workdir.mkdir(parents=True, exist_ok=True)
        if self.spec.per_verifier:
            return self.run_verifier_suite(workdir)
        artifact = self.build(toy.METHOD, {})
        per_backend = self.spec.per_backend
        cell = {"model": self.options.model, "model_params": {}, "dataset": self.options.dataset,
                "dataset_params": {}, "method": toy.METHOD, "method_params": {}, "seed": self.options.seed,
                "backend": "reference" if per_backend else None, "backend_params": {}, "suite": self.name}
        ctx = CellContext(cell=cell, artifact=artifact, splits=self.splits(), settings=self.values,
                          open_session=(lambda: ReferenceSession(artifact)) if per_backend else None,
                          baseline=lambda metric, **params: None,
                          backend_name="reference" if per_backend else None, is_baseline=True, workdir=workdir)
        return self.execute(ctx)

    def run_verifier_suite(self, workdir) -> str:
        """A suite that runs per verifier: with an installed Python verifier (``crown``, ``ibp`` or the
        first registered), on the toy artifact or, on benchmarks, on the verifier contract's network."""
        from harness.verify.process import run_verifier

        names = [n for n in ("crown", "ibp") if self.registry.has("verifier", n)] or \
            [r.spec.name for r in self.registry.registered("verifier") if r.spec.verify is not None]
        if not names:
            skip("no Python verifier is registered to run it with (install harness-plugins)")
        vname = names[0]
        vspec = self.registry.verifier(vname)
        calls = [0]

        def verify(onnx_path, vnnlib_path, timeout_s):
            calls[0] += 1
            return run_verifier(vspec, {}, onnx_path, vnnlib_path, timeout_s, workdir=workdir / f"v{calls[0]}",
                                plugins_dir=self.host.plugins_dir)

        cell = {"model": self.options.model, "model_params": {}, "dataset": self.options.dataset,
                "dataset_params": {}, "method": toy.METHOD, "method_params": {}, "seed": self.options.seed,
                "backend": vname, "backend_params": {}, "suite": self.name}
        if self.spec.on_benchmark:
            bench = known_answer_benchmark(self.workdir / "benchmark")
            ctx = CellContext(cell=cell, artifact=None, splits=None, settings=self.values, open_session=None,
                              baseline=lambda metric, **params: None, backend_name=None, is_baseline=True,
                              verifier_name=vname, verify=verify, benchmark=bench, workdir=workdir)
        else:
            ctx = CellContext(cell=cell, artifact=self.build(toy.METHOD, {}), splits=self.splits(),
                              settings=self.values, open_session=None, baseline=lambda metric, **params: None,
                              backend_name=None, is_baseline=True, verifier_name=vname, verify=verify,
                              workdir=workdir)
        return self.execute(ctx) + f" with verifier {vname}"

    def execute(self, ctx: CellContext) -> str:
        try:
            self.out = self.spec.run(ctx)
        except Skip as exc:
            skip(f"the suite skipped the check's cell ({self.cell_label()}): {exc}")
        if not isinstance(self.out, list):
            fail(f"run(ctx) returned {type(self.out).__name__}; return a list of harness.api.Measurement")
        return f"{len(self.out)} measurements on {self.cell_label()}"

    def measurements(self) -> str:
        declared = {m.name: m for m in self.spec.metrics}
        problems = []
        for m in self.out:
            if not isinstance(m, Measurement):
                problems.append(f"{m!r} is not a harness.api.Measurement")
                continue
            if declared and m.metric not in declared:
                problems.append(f"metric {m.metric!r} is not declared in metrics")
            elif declared and m.unit != declared[m.metric].unit:
                problems.append(f"{m.metric}: unit {m.unit!r} differs from the declared {declared[m.metric].unit!r}")
            if m.value is not None and not (isinstance(m.value, (int, float)) and math.isfinite(m.value)):
                problems.append(f"{m.metric}: value {m.value!r} must be a finite number or None")
            if not isinstance(m.params, dict) or not jsonable(m.params) or any(
                    isinstance(v, (dict, list)) for v in m.params.values()):
                problems.append(f"{m.metric}: params {m.params!r} must be a flat dict of JSON scalars")
            if m.samples is not None and not all(isinstance(v, (int, float)) for v in m.samples):
                problems.append(f"{m.metric}: samples must be a list of numbers")
        if problems:
            fail("; ".join(problems[:5]))
        names = sorted({m.metric for m in self.out})
        return f"Measurements of {', '.join(names)}"


def known_answer_benchmark(folder) -> object:
    """The verifier contract's network as a two-instance benchmark: one planted counterexample, one
    property that holds (:mod:`harness.devkit.conformance.verifier`)."""
    import torch

    from harness.devkit.conformance.verifier import HOLDS, VIOLATED, write_network
    from harness.verify.benchmarks import read_folder

    (folder / "vnnlib").mkdir(parents=True, exist_ok=True)
    write_network(folder / "model.onnx")
    (folder / "vnnlib" / "0.vnnlib").write_text(VIOLATED.text())
    (folder / "vnnlib" / "1.vnnlib").write_text(HOLDS.text())
    (folder / "instances.csv").write_text("model.onnx,vnnlib/0.vnnlib,30\nmodel.onnx,vnnlib/1.vnnlib,30\n")
    x = torch.tensor([1.0, -1.0, 1.0, 1.0])
    torch.save([(torch.zeros(4), 1, x), (torch.zeros(4), 1, None)], folder / "data.pt")
    return read_folder(folder, folder / "cache")
