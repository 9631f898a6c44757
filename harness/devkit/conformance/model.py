"""A model's contract: it builds the same way twice, forwards, trains, exports and pickles."""

from __future__ import annotations

import pickle
import time

from harness.core.errors import describe_exception
from harness.devkit.conformance.clauses import fail, skip
from harness.devkit.conformance.contract import Contract
from harness.plugin.specs import ModelContext, Skip


class ModelContract(Contract):
    """Checks one registered model on the check's dataset."""

    kind = "model"

    def check(self) -> None:
        """parameters, build, forward, train, export to ONNX, pickle."""
        c = self.c
        c.run("parameters", self.parameters)
        c.run("build", self.build_module, needs=["parameters"])
        c.run("forward", self.forward, needs=["build"])
        c.run("train", self.train, needs=["forward"])
        c.run("export to ONNX", self.export, needs=["forward"])
        c.run("pickles", self.pickles, needs=["forward"])

    def ctx(self) -> ModelContext:
        s = self.splits()
        return ModelContext(params=self.values, input_shape=tuple(s.input_shape), num_classes=s.num_classes,
                            seed=self.options.seed, splits=s)

    def build_module(self) -> str:
        import torch

        from harness.core.torchio import seed_everything

        seed_everything(self.options.seed)
        try:
            self.module = self.spec.build(self.ctx())
        except Skip as exc:  # the check's dataset does not fit this model (a language model on images)
            skip(f"{exc} (pass --dataset to check it on one that fits)")
        if not isinstance(self.module, torch.nn.Module):
            fail(f"build(ctx) returned {type(self.module).__name__}; return a torch.nn.Module")
        seed_everything(self.options.seed)
        again = self.spec.build(self.ctx())
        a, b = self.module.state_dict(), again.state_dict()
        if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
            fail("two builds with the same seed differ: initialise from torch's global RNG (the host seeds it) or "
                 "from ctx.seed, not from an unseeded generator")
        n = sum(p.numel() for p in self.module.parameters())
        return f"{type(self.module).__name__}, {n} parameters, for inputs {self.ctx().input_shape}; " \
               "the same weights from the same seed"

    def forward(self) -> str:
        import numpy as np
        import torch

        s = self.splits()
        x = torch.from_numpy(np.ascontiguousarray(s.test.x[:8]))
        with torch.no_grad():
            out = self.module.eval()(x)
        if not isinstance(out, torch.Tensor):
            fail(f"forward returned {type(out).__name__}; return one tensor of logits")
        want = (len(x), s.num_classes) if s.num_classes else None
        if want and tuple(out.shape) != want:
            fail(f"forward on a batch of {len(x)} returned shape {tuple(out.shape)}; expected {want}")
        if not torch.isfinite(out).all():
            fail("forward returned NaN or infinity")
        return f"batch {tuple(x.shape)} -> {tuple(out.shape)}"

    def train(self) -> str:
        import numpy as np
        import torch

        from harness.core.torchio import seed_everything
        from harness.devkit.conformance.clauses import jsonable

        if self.spec.train is None:
            skip("no training recipe (train=None): the seeded initialisation is the reference")
        s = self.splits()
        if not s.labelled:
            skip(f"dataset {self.options.dataset} is unlabelled; the host does not train on it")
        before = {k: v.clone() for k, v in self.module.state_dict().items()}
        seed_everything(self.options.seed)
        t0 = time.perf_counter()
        report = self.spec.train(self.module, self.ctx())
        took = time.perf_counter() - t0
        if report is not None and not (isinstance(report, dict) and jsonable(report)):
            fail(f"train() returned {report!r}; return None or a dict of JSON values (it is stored as a record)")
        after = self.module.state_dict()
        if all(torch.equal(before[k], after[k]) for k in before):
            fail("train(module, ctx) left every weight unchanged: train the module it is given, in place")
        with torch.no_grad():
            pred = self.module.eval()(torch.from_numpy(np.ascontiguousarray(s.test.x))).argmax(1).numpy()
        top1 = float((pred == s.test.y).mean())
        chance = 1.0 / s.num_classes if s.num_classes else 0.0
        return f"{took:.1f} s on {self.options.dataset}; test top-1 {top1:.3f} (chance {chance:.3f})"

    def export(self) -> str:
        import importlib.util

        import numpy as np
        import torch

        from harness.core.torchio import export_onnx
        from harness.measure.reference import compare_outputs

        path = export_onnx(self.module.eval(), self.workdir / f"{self.name}.onnx", tuple(self.ctx().input_shape))
        if importlib.util.find_spec("onnxruntime") is None:
            return f"exported to {path.name}; onnxruntime is not installed, outputs not compared"
        import onnxruntime as ort

        x = np.ascontiguousarray(self.splits().test.x[:5])
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        with torch.no_grad():
            want = self.module(torch.from_numpy(x)).numpy()
        cmp = compare_outputs(got, want)
        if not cmp["ok"]:
            fail(f"onnxruntime on the exported model disagrees with torch: {cmp['why']}")
        return f"dynamic batch; onnxruntime agrees with torch (max abs diff {cmp['max_abs_diff']:.2g})"

    def pickles(self) -> str:
        import torch

        from harness.core.safeload import UnsafeFile, load_module

        path = self.workdir / f"{self.name}.module.pt"
        try:
            torch.save(self.module, path)
        except (AttributeError, TypeError, pickle.PicklingError) as exc:
            fail(f"the module does not pickle ({describe_exception(exc)}): define its class at module level "
                 "in an importable module; artifacts are saved whole with torch.save(module)")
        try:
            # The host's own loader: only torch.nn classes and the plugin's own, no function calls.
            load_module(path, what="the saved module", instead="build the module from torch.nn classes and "
                        "classes defined in the plugin's package")
        except UnsafeFile as exc:
            fail(str(exc))
        return "torch.save / safe torch.load round trip (artifacts are saved whole, loaded without running code)"
