"""A plugin that gets every contract wrong in one way, for the conformance check's tests.

It imports torch at the top on purpose (the "import is light" clause must catch it); the
module classes must be importable from the module anyway, because artifacts are pickled.
"""

import torch

from harness.api import (
    BackendSpec,
    DatasetSpec,
    InProcessSession,
    Measurement,
    MethodSpec,
    MetricSpec,
    ModelSpec,
    Param,
    Split,
    Splits,
    SuiteSpec,
    TimingResult,
    VerifierSpec,
    hookimpl,
)

# --------------------------------------------------------------------------- methods


def identity(ctx):
    return ctx.module


def prune_30_percent(ctx):
    for layer in ctx.module.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            w = layer.weight.data.view(-1)
            w[torch.argsort(w.abs())[: round(0.3 * w.numel())]] = 0.0
    return ctx.module


def raise_boom(ctx):
    raise ValueError("boom")


METHODS = [
    MethodSpec(name="fine", apply=identity, claims=lambda p: {}),
    MethodSpec(name="half-claim", apply=prune_30_percent, claims=lambda p: {"sparsity": 0.5}),
    MethodSpec(name="returns-string", apply=lambda ctx: "not a module"),
    MethodSpec(name="wrong-produces", apply=identity, produces=("onnx",)),
    MethodSpec(name="bits-liar", apply=identity, claims=lambda p: {"weight_bits": 2}),
    MethodSpec(name="bad-default", apply=identity, params=(Param("level", int, default=10, min=0, max=5),)),
    MethodSpec(name="raiser", apply=raise_boom),
]

# --------------------------------------------------------------------------- backends


class Doubler(InProcessSession):
    def __init__(self, artifact, params):
        self.module = artifact.load_torch()
        self.info = {"runtime": "doubler"}

    def bind(self, x):
        t = torch.from_numpy(x)
        return lambda: (self.module(t) * 2).detach().numpy()


class Hasty(Doubler):
    def bind(self, x):
        t = torch.from_numpy(x)
        return lambda: self.module(t).detach().numpy()

    def time(self, batches, plan):
        return TimingResult(samples_s=[1e-3, 1e-3], inner_loops=1, warmup_iters=plan.warmup_iters, timer="guess")


BACKENDS = [
    BackendSpec(name="doubler", session=Doubler, accepts=("torch",)),
    BackendSpec(name="mute", session=Doubler, accepts=("torch",), available=lambda: (False, "")),
    BackendSpec(name="hasty", session=Hasty, accepts=("torch",)),
]

# --------------------------------------------------------------------------- datasets


def _splits(x, y, classes=3, fingerprint="fixed"):
    s = Split(x=x, y=y)
    return Splits(train=s, calibration=s, test=s, input_shape=tuple(x.shape[1:]), num_classes=classes,
                  fingerprint=fingerprint)


def jittery(ctx):
    import numpy as np

    x = np.random.default_rng().random((12, 1, 4, 4), dtype=np.float32)  # unseeded: different every call
    return _splits(x, np.arange(12, dtype=np.int64) % 3)


def doubles(ctx):
    import numpy as np

    return _splits(np.zeros((12, 1, 4, 4)), np.arange(12, dtype=np.int64) % 3)


def off_by_one(ctx):
    import numpy as np

    return _splits(np.zeros((12, 1, 4, 4), dtype=np.float32), np.arange(12, dtype=np.int64) % 3 + 1)


DATASETS = [DatasetSpec(name="jittery", load=jittery), DatasetSpec(name="doubles", load=doubles),
            DatasetSpec(name="off-by-one", load=off_by_one)]

# --------------------------------------------------------------------------- models


class Wide(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.fc = torch.nn.Linear(features, classes + 1)

    def forward(self, x):
        return self.fc(x.flatten(1))


def unseeded(ctx):
    import numpy as np

    module = Wide(64, ctx.num_classes - 1)
    with torch.no_grad():
        module.fc.weight.copy_(torch.from_numpy(np.random.default_rng().random(module.fc.weight.shape)))
    return module


def local_class(ctx):
    class Local(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(64, ctx.num_classes)

        def forward(self, x):
            return self.fc(x.flatten(1))

    return Local()


MODELS = [ModelSpec(name="unseeded", build=unseeded),
          ModelSpec(name="wide", build=lambda ctx: Wide(64, ctx.num_classes)),
          ModelSpec(name="local", build=local_class)]

# --------------------------------------------------------------------------- suites

SUITES = [
    SuiteSpec(name="no-metrics", run=lambda ctx: [Measurement("mystery", 1.0, "count")], per_backend=False),
    SuiteSpec(name="wrong-unit", run=lambda ctx: [Measurement("wait", 1.0, "s")], per_backend=False,
              metrics=(MetricSpec("wait", "ms", False, "a wait"),)),
]

# --------------------------------------------------------------------------- verifiers

VERIFIERS = [
    VerifierSpec(name="always-holds", verify=lambda onnx, prop, timeout: {"result": "holds"}),
    VerifierSpec(name="sat-speaker", verify=lambda onnx, prop, timeout: {"result": "sat"}),
    VerifierSpec(name="fake-witness", verify=lambda onnx, prop, timeout: {
        "result": "violated", "witness": {"x": [0.0, 0.0, 0.0, 0.0], "y": [0.25, -0.1]}}),
]


@hookimpl
def harness_register_methods(register):
    for spec in METHODS:
        register(spec)


@hookimpl
def harness_register_backends(register):
    for spec in BACKENDS:
        register(spec)


@hookimpl
def harness_register_datasets(register):
    for spec in DATASETS:
        register(spec)


@hookimpl
def harness_register_models(register):
    for spec in MODELS:
        register(spec)


@hookimpl
def harness_register_suites(register):
    for spec in SUITES:
        register(spec)


@hookimpl
def harness_register_verifiers(register):
    for spec in VERIFIERS:
        register(spec)
