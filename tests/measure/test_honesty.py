"""The cheap checks every cell runs (harness.measure.honesty): a timed call that does not compute is caught
whatever the shape of its shortcut; reference outputs are computed once per artifact and inputs."""

from __future__ import annotations

import numpy as np
import pytest

from harness.measure.honesty import (
    Check,
    check_agreement,
    check_measurement,
    check_timed_call,
    claims_fix,
    precision,
    reference_outputs,
    timed_call_outputs,
)
from harness.measure.timing import InProcessSession, TimingPlan

W = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
PLAN = TimingPlan(warmup_iters=2, warmup_s=0.0, min_samples=3, min_time_s=0.0, max_time_s=1.0)


def model(x):
    return x.reshape(len(x), -1) @ W


class Honest(InProcessSession):
    info = {"runtime": "numpy"}

    def bind(self, x):
        return lambda: model(x)


class Stale(Honest):
    def bind(self, x):
        out = model(x)  # computed once, when bound
        return lambda: out


class Constant(Honest):
    def bind(self, x):
        return lambda: np.zeros((len(x), 3), dtype=np.float32)


class IdentityCache(Honest):
    def __init__(self):
        self.cache = {}

    def bind(self, x):
        def call():
            if id(x) not in self.cache:
                self.cache[id(x)] = model(x)
            return self.cache[id(x)]
        return call


class FirstCall(Honest):
    """Computes on its first call ever, then returns that output."""

    def __init__(self):
        self.out = None

    def bind(self, x):
        def call():
            if self.out is None:
                self.out = model(x)
            return self.out
        return call


class Reused(Honest):
    """Honest, but writes every output into one buffer it returns (as runtimes with bound outputs do)."""

    def __init__(self):
        self.buf = np.zeros((1, 3), dtype=np.float32)

    def bind(self, x):
        def call():
            np.copyto(self.buf, model(x))
            return self.buf
        return call


class OtherRuntime:
    """A session of another runtime: no bind; what its timing path computes comes from timed_outputs."""

    info = {"runtime": "elsewhere"}

    def __init__(self, lie=False):
        self.lie = lie

    def run(self, x):
        return model(x)

    def time(self, batches, plan):
        raise AssertionError("not called")

    def timed_outputs(self, batches):
        return [model(batches[0]) if self.lie else model(b) for b in batches]


def batches(n=8, bs=1):
    x = np.random.default_rng(1).standard_normal((n * bs, 1, 4, 4)).astype(np.float32)
    return [x[i * bs:(i + 1) * bs] for i in range(n)]


def reference(bs):
    return [model(b) for b in bs]


@pytest.mark.parametrize("session", [Honest(), Reused(), OtherRuntime()], ids=lambda s: type(s).__name__)
def test_a_timed_call_that_computes_passes(session):
    bs = batches()
    check = check_timed_call(session, bs, reference(bs), "fp32")
    assert check.ok is True, check.message
    assert check.flag is None
    assert "equal the reference on 8 rotated inputs" in check.message


@pytest.mark.parametrize("session, bad", [(Stale(), 7), (Constant(), 8), (IdentityCache(), 7), (FirstCall(), 7),
                                          (OtherRuntime(lie=True), 7)],
                         ids=lambda s: type(s).__name__ if not isinstance(s, int) else str(s))
def test_a_timed_call_that_does_not_compute_fails(session, bad):
    bs = batches()
    session.time(bs, PLAN) if isinstance(session, InProcessSession) else None  # as a latency cell times first
    check = check_timed_call(session, bs, reference(bs), "fp32")
    assert check.ok is False
    assert f"outputs under timing differ from the reference on {bad} of 8 rotated inputs" in check.message
    assert "the timed call does not run the model" in check.message
    assert check.flag.startswith("soundness: test01: outputs under timing differ")


def test_a_timed_call_computing_another_function_says_by_how_much():
    class Noisy(Honest):
        def bind(self, x):
            return lambda: model(x) + 0.01

    bs = batches()
    check = check_timed_call(Noisy(), bs, reference(bs), "fp32")
    assert check.ok is False and "on 8 of 8 rotated inputs (fp32): max abs diff 0.01" in check.message
    assert "does not run the model" not in check.message


def test_a_session_without_a_checkable_timing_path_is_unchecked():
    class Opaque:
        info = {}

        def run(self, x):
            return model(x)

    bs = batches()
    check = check_timed_call(Opaque(), bs, reference(bs), "fp32")
    assert check.ok is None
    assert check.flag.startswith("unchecked: test01: the session has neither bind")
    m = check_measurement(check, {"batch_size": 1})
    assert m.metric == "check_test01" and m.value is None and m.flag == check.flag and m.params == {"batch_size": 1}


def test_inputs_change_in_place_under_one_bound_call():
    seen = []

    class Spy(Honest):
        def bind(self, x):
            seen.append(x)
            return lambda: model(x)

    bs = batches()
    outs, how = timed_call_outputs(Spy(), bs)
    assert how == "bound call, inputs changed in place" and len(seen) == 1
    assert all(np.array_equal(o, model(b)) for o, b in zip(outs, bs))
    # batches of different shapes get a call each
    outs, how = timed_call_outputs(Spy(), [bs[0], np.concatenate(bs[:2])])
    assert how == "bound call per input" and outs[1].shape == (2, 3)


def test_feeds_of_named_arrays_are_refilled_by_name():
    class Feed(Honest):
        def bind(self, x):
            return lambda: model(x["a"]) + x["b"]

    bs = [{"a": b, "b": np.full((1, 3), i, dtype=np.float32)} for i, b in enumerate(batches())]
    ref = [model(b["a"]) + b["b"] for b in bs]
    assert check_timed_call(Feed(), bs, ref, "fp32").ok is True


def test_agreement_flags_another_function_and_passes_the_same():
    bs = batches(4, 8)
    ref = reference(bs)
    same = check_agreement([r + 1e-7 for r in ref], ref, "fp32", top1=True, runtime="onnxruntime")
    assert same.ok is True and same.info["top1_agreement"] == 1.0
    other = check_agreement([-r for r in ref], ref, "fp32", top1=True, runtime="onnxruntime")
    assert other.ok is False and other.flag.startswith("soundness: agreement: disagrees with the reference")
    assert "on 4 of 4 batches" in other.message


def test_precision_of_a_cell():
    assert precision({"dtype": "fp16"}, {}) == "fp16"
    assert precision({"dtype": "fp32", "tf32": True}, None) == "tf32"
    assert precision({}, {"weight_bits": 8}) == "int8"
    assert precision(None, {"sparsity": 0.5}) == "fp32"


def test_claims_fix_says_what_to_change():
    text = claims_fix("sparsity", 0.5, 0.3)
    assert "make apply produce what claims(params) says (sparsity 0.5)" in text
    assert "make claims(params) say what apply produces (sparsity 0.3)" in text


def test_check_flags():
    assert Check("claims", False, "x").flag == "soundness: claims: x"
    assert Check("claims", True, "x").flag is None


def test_reference_outputs_are_computed_once_per_artifact_and_inputs(toy_artifact, tmp_path, monkeypatch):
    from harness.core.paths import CACHE_ENV
    from harness.measure.reference import ReferenceSession

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    x = np.random.default_rng(2).standard_normal((4, 1, 8, 8)).astype(np.float32)
    bs = [x[:2], x[2:]]
    first, info = reference_outputs(toy_artifact, bs)
    assert info["cached"] is False
    direct = ReferenceSession(toy_artifact)
    try:
        assert all(np.array_equal(a, np.asarray(direct.run(b))) for a, b in zip(first, bs))
    finally:
        direct.close()
    again, info = reference_outputs(toy_artifact, bs)
    assert info["cached"] is True and all(np.array_equal(a, b) for a, b in zip(first, again))
    # other inputs are another entry
    _, info = reference_outputs(toy_artifact, [x[:1]])
    assert info["cached"] is False
    # a torn entry is computed again, never trusted
    entries = sorted((tmp_path / "cache" / "checks" / toy_artifact.key).glob("reference-*.npz"))
    for e in entries:
        e.write_bytes(b"PK\x03\x04 torn")
    third, info = reference_outputs(toy_artifact, bs)
    assert info["cached"] is False and all(np.array_equal(a, b) for a, b in zip(first, third))
