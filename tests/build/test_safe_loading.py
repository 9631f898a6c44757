"""Module and state files are loaded without running code from them (harness.core.safeload)."""

from __future__ import annotations

import pickle
import warnings

import pytest
from hostile import ExecPayload, SystemPayload, payload_runs_under_plain_load, write_module_payload

from harness.core.safeload import UnsafeFile, admit, load_module, load_state


@pytest.mark.parametrize("payload", [ExecPayload, SystemPayload])
def test_a_module_file_with_a_reduce_payload_is_refused_and_runs_nothing(tmp_path, payload):
    marker = tmp_path / "marker"
    path = write_module_payload(tmp_path / "module.pt", marker, payload)
    assert payload_runs_under_plain_load(path, marker)  # the file really is hostile
    with pytest.raises(UnsafeFile) as err:
        load_module(path, what="artifact x: module file", instead="rebuild it")
    assert not marker.exists()
    msg = str(err.value)
    assert str(path) in msg and "refused" in msg and "rebuild it" in msg
    assert ("builtins.exec" in msg) or ("system" in msg)


def test_a_bare_pickle_payload_is_refused(tmp_path):
    """Not a torch zip at all: the legacy pickle format is read by the same restricted unpickler."""
    marker = tmp_path / "marker"
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps(ExecPayload(marker)))
    with pytest.raises(UnsafeFile) as err:
        load_module(path, what="network", instead="x")
    assert not marker.exists() and str(path) in str(err.value)


def test_a_graph_module_is_refused_it_compiles_source_from_the_file(tmp_path):
    import torch

    traced = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    torch.save(traced, tmp_path / "g.pt")
    with pytest.raises(UnsafeFile, match="torch.fx"):
        load_module(tmp_path / "g.pt", what="module", instead="x")


@pytest.mark.parametrize("name", ["subprocess.Popen", "os.system", "builtins.eval", "torch.fx.GraphModule",
                                  "torch.load", "torch.jit.load", "antigravity.fly", "collections.Counter"])
def test_admit_refuses_functions_non_modules_and_code_carrying_modules(name):
    obj, why = admit(name)
    assert obj is None and why


def test_admit_never_imports_an_untrusted_module():
    import sys

    assert "antigravity" not in sys.modules
    admit("antigravity.Foo")
    assert "antigravity" not in sys.modules


def test_first_party_module_kinds_load_back_and_compute_the_same(tmp_path):
    """The module kinds first-party methods return: plain torch layers, a plugin's class, pruning hooks,
    torch.ao dynamic quantization (packed weights), a plugin Hugging Face wrapper."""
    import torch
    import torch.nn.utils.prune as prune

    from harness.core.safeload import trust_package
    from harness_plugins.hf import tiny_llama
    from harness_plugins.nets import LeNet5

    trust_package("harness_plugins")  # as loading the plugin does
    x = torch.randn(2, 1, 28, 28)
    lenet = LeNet5((1, 28, 28), 10).eval()
    hooked = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    prune.l1_unstructured(hooked[0], "weight", 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dyn = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(4, 3)).eval(),
                                                     {torch.nn.Linear}, dtype=torch.qint8)
    lm = tiny_llama(vocab=16, hidden=8, layers=1, heads=2, max_len=16).eval()
    cases = [(lenet, x), (hooked, torch.randn(2, 4)), (dyn, torch.randn(2, 4)),
             (lm, torch.randint(0, 16, (1, 5)))]
    for i, (module, inp) in enumerate(cases):
        path = tmp_path / f"m{i}.pt"
        torch.save(module, path)
        back = load_module(path, what="module", instead="x").eval()
        assert type(back) is type(module)
        with torch.no_grad():
            assert torch.allclose(back(inp), module(inp))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04trunc", b"\x80\x04garbage", bytes(range(256)) * 40, "dir"])
def test_bad_state_files_name_the_file_and_the_reason(tmp_path, content):
    path = tmp_path / "w.pt"
    if content == "dir":
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(UnsafeFile) as err:
        load_state(path, what="model lenet5: weights file")
    msg = str(err.value)
    assert str(path) in msg and "weights file" in msg
    assert "Errno" not in msg and "EOFError" not in msg


def test_a_truncated_real_state_file_says_it_is_truncated(tmp_path):
    import torch

    path = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(50, 50).state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UnsafeFile, match="truncated"):
        load_state(path, what="weights file")
    with pytest.raises(UnsafeFile, match="truncated"):
        load_module(path, what="module", instead="x")


def test_random_files_of_every_shape_are_refused_naming_the_file(tmp_path):
    """Random bytes, and random bytes behind a pickle or zip header, seeded: torch's readers raise many
    kinds of error on them (IndexError, KeyError, struct.error...); each becomes UnsafeFile."""
    import random

    rng = random.Random(0)
    for i in range(60):
        head = (b"", b"\x80\x02", b"\x80\x04\x95", b"PK\x03\x04", b"\x8a\x0al\xfc\x9cF\xf9 j\xa8")[i % 5]
        path = tmp_path / f"r{i}.pt"
        path.write_bytes(head + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 4000))))
        for load in (lambda p: load_state(p, what="weights file"),
                     lambda p: load_module(p, what="module file", instead="x")):
            with pytest.raises(UnsafeFile) as err:
                load(path)
            assert str(path) in str(err.value)


def test_trusting_a_plugin_never_trusts_the_standard_library():
    from harness.core.safeload import TRUSTED_PACKAGES, trust_package

    trust_package("types")  # a plugin object whose class lives in the standard library
    trust_package("os.path")
    assert "types" not in TRUSTED_PACKAGES and "os" not in TRUSTED_PACKAGES


class _Colour(__import__("enum").Flag):
    RED = 1
    BLUE = 2


class _WithEnum(__import__("torch").nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = __import__("torch").nn.Linear(2, 2)
        self.mode = _Colour.BLUE


def test_an_enum_member_attribute_loads_back_as_the_same_member(tmp_path):
    """transformers 5 modules keep a kernels ``Mode`` flag (``_kernels_mode``) as an attribute."""
    import torch

    torch.save(_WithEnum(), tmp_path / "e.pt")
    back = load_module(tmp_path / "e.pt", what="module", instead="x")
    assert back.mode is _Colour.BLUE


def test_a_hugging_face_llama_with_kernel_function_modules_loads_back_the_same(tmp_path):
    """transformers 5 attention layers hold ``_kernel_funcs``: modules pickled as a call of kernels'
    ``_rebuild_kernel_func``, which the loader answers with its own restricted rebuild."""
    import torch

    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=2, intermediate_size=24, vocab_size=50)
    torch.manual_seed(0)
    lm = transformers.LlamaForCausalLM(config).eval()
    torch.save(lm, tmp_path / "lm.pt")
    before = torch.serialization.get_safe_globals()
    back = load_module(tmp_path / "lm.pt", what="module", instead="x").eval()
    assert set(torch.serialization.get_safe_globals()) == set(before)  # nothing admitted outlives the load
    ids = torch.randint(0, 50, (1, 7))
    with torch.no_grad():
        assert torch.equal(back(ids).logits, lm(ids).logits)


class _Rebuild:
    """Pickles as a call of kernels' rebuild function with names the file chooses."""

    def __init__(self, func, module, attribute):
        self.args = func, module, attribute

    def __reduce__(self):
        func, module, attribute = self.args
        return func, (module, attribute)


@pytest.mark.parametrize(("module", "attribute"), [("antigravity", "fly"), ("os", "system"),
                                                   ("subprocess", "Popen"), ("torch.fx", "GraphModule")])
def test_the_kernel_rebuild_never_imports_or_builds_what_the_file_names(tmp_path, module, attribute):
    import sys

    import torch

    layer = pytest.importorskip("kernels._internals.layer.layer")
    if not hasattr(layer, "_rebuild_kernel_func"):
        pytest.skip("this kernels version has no _rebuild_kernel_func")
    wrapper = torch.nn.Module()
    wrapper.funcs = {"f": _Rebuild(layer._rebuild_kernel_func, module, attribute)}
    torch.save(wrapper, tmp_path / "r.pt")
    had = module in sys.modules
    with pytest.raises(UnsafeFile) as err:
        load_module(tmp_path / "r.pt", what="module", instead="x")
    assert f"{module}.{attribute}" in str(err.value) and str(tmp_path / "r.pt") in str(err.value)
    assert (module in sys.modules) == had
