"""Loading a pickled torch module without running code from the file.

A ``torch.save(module)`` file is a pickle, and a plain ``torch.load(weights_only=False)`` calls any
function the file names: a cache entry, a benchmark's ``model.pt`` or a downloaded artifact would
run whatever its author wrote. Here the file is read by torch's own restricted unpickler
(``weights_only=True``), which calls nothing but tensor rebuilders, with the classes the file
names allowlisted one by one through ``torch.serialization.safe_globals``, and only when they pass
:func:`admit`:

- the class is a ``torch.nn.Module`` subclass (or one of the few configuration classes in
  :data:`DATA_CLASSES` that Hugging Face modules hold), never a function, method or other object;
- its module is already imported, or lies under a trusted package (``torch``, ``transformers`` and
  the packages of loaded plugins, see :func:`trust_package`): a file never makes the process import
  anything else, since importing a module runs its code;
- its module is not one whose modules execute code they carry (``torch.fx``, ``torch.jit``,
  ``torch.export``, ``torch.package``, ``torch._dynamo``: a ``GraphModule`` compiles Python source).

Two more kinds of name appear in the modules Hugging Face ``transformers`` (5.x, with its ``kernels``
dependency) builds, and both are admitted without widening what a file can run:

- members of an ``enum.Enum`` from an imported module (``PreTrainedModel._kernels_mode`` holds a
  ``kernels`` ``Mode``): the unpickler calls the enum class with a value, which looks the member up;
- ``kernels``' function that rebuilds a wrapped-function module (``_kernel_funcs`` of an attention
  layer) from a module and attribute name is never called. :data:`REBUILDERS` maps its name to
  :func:`fresh_module_like`, which imports nothing the policy does not, and returns a new instance
  of the class of an ``nn.Module`` object the named (imported or trusted) module already holds.

What such a file can do is build admitted classes from data (numbers, strings, tensors) and set
their attributes: the classes' own code runs, none of the file's. The globals are read from the
pickle's opcodes first (``torch.serialization.get_unsafe_globals_in_checkpoint``, which executes
nothing), so a refused file is refused before any object is built, with the names it used.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError

#: Packages whose classes a module file may name (with those of loaded plugins, added at load).
TRUSTED_PACKAGES: set[str] = {"torch", "transformers"}

#: Never admitted: their modules run code they carry (GraphModule source, TorchScript, packages).
BLOCKED_MODULES = ("torch.fx", "torch.jit", "torch.export", "torch.package", "torch._dynamo", "torch.utils")

#: Plain data classes (by the name of a base) that model modules hold as attributes or hooks.
DATA_CLASSES = ("transformers.configuration_utils.PretrainedConfig",
                "transformers.configuration_utils.PreTrainedConfig",
                "transformers.generation.configuration_utils.GenerationConfig",
                # torch.nn.utils.prune's forward pre-hooks: a mask recipe (amount, dim), no code of their own.
                "torch.nn.utils.prune.BasePruningMethod",
                # An enum member is rebuilt by calling its class with the value: a lookup among the
                # members the class's own module defined.
                "enum.Enum")

#: torch's handle of a C++ (torchbind) object, as quantized modules hold their packed weights: the
#: file gives it data, the registered C++ class's own ``__setstate__`` rebuilds it.
TORCH_OBJECTS = ("torch.ScriptObject",)


#: What a benchmark folder should ship instead of a ``model.pt`` the loader refuses.
NETWORK_HINT = ("a model.pt must hold a module built only of torch.nn classes (and those of installed "
                "plugins), saved with torch.save(module); or remove model.pt and verify the shipped "
                "model.onnx with method 'dense'")


class UnsafeFile(UsageError):
    """A file would need code run to be loaded (it names a function or a class outside the policy),
    or it is not a torch file at all; the message names the file, what it named and what to provide."""


def trust_package(module_name: str) -> None:
    """Admit classes of ``module_name``'s top-level package (the plugin manager calls it per plugin)."""
    root = module_name.split(".", 1)[0]
    # The standard library holds no module classes and much that must never be imported for a file.
    if root and root != "__main__" and root not in sys.stdlib_module_names:
        TRUSTED_PACKAGES.add(root)


def _root_trusted(module: str) -> bool:
    return module.split(".", 1)[0] in TRUSTED_PACKAGES


def _blocked(module: str) -> bool:
    return any(module == b or module.startswith(b + ".") for b in BLOCKED_MODULES)


def _resolve(full: str) -> tuple[Any, str]:
    """The object a pickle global ``module.qualname`` names, or ``(None, why)``; imports only trusted packages."""
    parts = full.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module, qual = ".".join(parts[:cut]), parts[cut:]
        mod = sys.modules.get(module)
        if mod is None:
            if not _root_trusted(module):
                continue
            try:
                mod = importlib.import_module(module)
            except ImportError:
                continue
        if _blocked(module):
            return None, f"module {module} runs code it carries"
        obj: Any = mod
        for name in qual:
            obj = getattr(obj, name, None)
            if obj is None:
                break
        if obj is not None:
            return obj, module
    return None, "not from torch, a loaded plugin or an imported module"


#: Modules whose functions a module file may name: tensor math only (activations kept as attributes).
TENSOR_FUNCTION_MODULES = ("torch._C._nn.", "torch.nn.functional.", "torch._C._VariableFunctions.")


_REBUILD_REFUSED = "the file asks to rebuild"


def fresh_module_like(module_name: str, attribute: str) -> Any:
    """A new instance of the class of the ``nn.Module`` object ``module_name.attribute``.

    Stands in for ``kernels``' ``_rebuild_kernel_func``, which imports any module a file names. Here
    the module must be imported already or lie under a trusted package (as for classes), and the
    attribute must be an ``nn.Module`` (its class, created by the module's own code, is built with no
    arguments). The class is admitted for the pickle's following BUILD, which sets its attributes.
    """
    import torch

    obj, where = _resolve(f"{module_name}.{attribute}")
    if obj is None or not isinstance(obj, torch.nn.Module) or _blocked(type(obj).__module__):
        why = where if obj is None else f"a {type(obj).__name__}, not a torch.nn.Module"
        raise torch.serialization.pickle.UnpicklingError(f"{_REBUILD_REFUSED} {module_name}.{attribute}, "
                                                         f"which is refused: {why}")
    cls = type(obj)
    torch.serialization.add_safe_globals([(cls, f"{cls.__module__}.{cls.__qualname__}")])
    return cls()


#: Functions a file may name that rebuild an object from names: each is replaced, while the file is
#: read, by the harness's restricted equivalent (the original is never called).
REBUILDERS = {"kernels._internals.layer.layer._rebuild_kernel_func": fresh_module_like}


def _is_data_class(cls: type) -> bool:
    return any(f"{b.__module__}.{b.__qualname__}" in DATA_CLASSES for b in cls.__mro__)


def admit(full: str) -> tuple[Any, str]:
    """``(class, "")`` when a file may name the global ``full``; else ``(None, why not)``."""
    import torch

    if full in REBUILDERS:
        return REBUILDERS[full], ""
    obj, where = _resolve(full)
    if obj is None:
        return None, where
    if not isinstance(obj, type):
        # A module may hold a tensor function as an attribute (Hugging Face's activations keep
        # torch._C._nn.gelu): torch's own math on tensors, which reaches no file, process or code.
        if callable(obj) and full.startswith(TENSOR_FUNCTION_MODULES):
            return obj, ""
        return None, f"a {type(obj).__name__}, not a class: loading would call it"
    if _blocked(obj.__module__):
        return None, f"module {obj.__module__} runs code it carries"
    if issubclass(obj, torch.nn.Module) or _is_data_class(obj) or full in TORCH_OBJECTS:
        return obj, ""
    return None, "not a torch.nn.Module"


def refusal(path: str | Path) -> str | None:
    """Why :func:`load_module` would refuse ``path`` by the names it holds (``None``: it would not).

    Reads the pickle's opcodes only, so a suite file can be checked before anything runs.
    """
    import torch

    try:
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as exc:  # noqa: BLE001 - random bytes raise anything
        return f"not a readable torch file ({_reason(exc)})"
    refused = [f"{full} ({why})" for full in names for obj, why in [admit(full)] if obj is None]
    return f"names {', '.join(refused)}: loading it would run code the file chooses" if refused else None


def load_module(path: str | Path, *, what: str, instead: str) -> Any:
    """The ``torch.nn.Module`` saved whole in ``path`` (``torch.save(module)``), loaded on the CPU.

    ``what`` names the file in messages (``cached artifact module``), ``instead`` says what the
    user can provide when the file is refused. Raises :class:`UnsafeFile` for a file that names
    anything :func:`admit` refuses, that is not a torch file, or that holds no module.
    """

    import torch

    path = Path(path)
    try:
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as exc:  # noqa: BLE001 - random bytes raise anything (IndexError, KeyError, struct.error...)
        raise UnsafeFile(f"{what} {path}: not a readable torch file ({_reason(exc)}); {instead}",
                         file=str(path)) from None
    allowed, refused = [], []
    for full in names:
        obj, why = admit(full)
        if obj is None:
            refused.append(f"{full} ({why})")
        else:
            allowed.append((obj, full))
    if refused:
        raise UnsafeFile(f"{what} {path} names {', '.join(refused)}: loading it would run code the file "
                         f"chooses, so it is refused; {instead}", file=str(path))
    # fresh_module_like admits the classes it builds while the file is read; none outlives the load.
    before = torch.serialization.get_safe_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - as above: a damaged file fails in any of torch's readers
        raise UnsafeFile(f"{what} {path}: cannot be loaded ({_reason(exc)}); {instead}", file=str(path)) from None
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)
    if not isinstance(obj, torch.nn.Module):
        raise UnsafeFile(f"{what} {path} holds a {type(obj).__name__}, not a torch.nn.Module; {instead}",
                         file=str(path))
    return obj


def load_state(path: str | Path, *, what: str) -> Any:
    """A state_dict (tensors in dicts and lists) from ``path``; :class:`UnsafeFile` naming the file otherwise."""

    import torch

    path = Path(path)
    if path.is_dir():
        raise UnsafeFile(f"{what} {path} is a folder, not a file", file=str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - random bytes raise anything (IndexError, KeyError, struct.error...)
        raise UnsafeFile(f"{what} {path}: not a torch state_dict file ({_reason(exc)}); save one with "
                         "torch.save(module.state_dict(), path)", file=str(path)) from None


def _reason(exc: BaseException) -> str:
    """A one-line reason from a loader's exception (torch's are paragraphs; an EOFError has no text)."""
    whole = str(exc)
    text = whole.strip().splitlines()[0] if whole.strip() else ""
    if isinstance(exc, EOFError) or "EOF" in whole or "Ran out of input" in whole:
        return "the file ends early: truncated or empty"
    if "zip archive" in whole or "central directory" in whole or "invalid load key" in whole:
        return "not a torch zip file: truncated, empty or of another format"
    if _REBUILD_REFUSED in whole:
        return _REBUILD_REFUSED + whole.split(_REBUILD_REFUSED, 1)[1].splitlines()[0]
    if "Weights only load failed" in whole:
        names = [line.split("GLOBAL", 1)[1].split()[0] for line in whole.splitlines() if "GLOBAL" in line][:1]
        held = f" (it names {names[0]})" if names else ""
        return f"it holds more than tensors{held}, or is not a torch file"
    if isinstance(exc, OSError):
        return exc.strerror or text or type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
