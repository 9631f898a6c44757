"""Verifiers: the spec of a neural-network verifier, a Python function or a VNN-COMP tool folder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.plugin.params import Param
from harness.plugin.specs.common import SpecError, check_common, must_be_callable


@dataclass(frozen=True)
class VerifierSpec:
    """A neural-network verifier: an ONNX network, a VNN-LIB property and a timeout in; ``holds``,
    ``violated`` (with a witness), ``unknown`` or ``timeout`` out.

    Every verifier runs one instance per process of its own (:mod:`harness.verify.process`): a
    crash or a hang costs one verdict, and tools with conflicting dependencies keep their own
    environments. Give exactly one of:

    :param verify: ``verify(onnx_path, vnnlib_path, timeout_s, **params) -> dict`` with ``result``
        one of ``holds``, ``violated`` (with ``witness``), ``unknown`` or ``timeout``. A ``witness``
        is ``{"x": [inputs...], "y": [outputs...]}``, flat lists as VNN-COMP's counterexample files;
        ``info`` (a dict) and ``error`` (a string) are recorded too. The verifier's parameters
        arrive as keyword arguments. The host calls it in a fresh Python process
        (``python -m harness.verify.child``) that loads the plugins again; answer within
        ``timeout_s`` (the process is killed a little after it). ``unknown`` means the verifier
        ran and could not decide; an exception, a malformed answer or a process that does not
        start is the ``error`` verdict, which fails the cell.
    :param tool: ``tool(params) -> folder``: a tool in VNN-COMP's layout, with ``run_instance.sh``
        (and optionally ``prepare_instance.sh``), called as the competition calls it; it brings its
        own environment (a conda env, a container) inside its scripts.
    :param complete: the verifier decides every instance given time (MILP, branch and bound);
        ``False`` for incomplete verifiers and falsifiers. Shown in listings.
    :param available: ``available(params) -> (ok, reason)``; an unavailable verifier's cells are
        ``skipped`` with the reason.

    ``name``, ``params``, ``description`` and ``example`` are the fields every spec has
    (:mod:`harness.plugin.specs.common`).
    """

    name: str
    verify: Callable[..., dict] | None = None
    tool: Callable[[Mapping[str, Any]], Any] | None = None
    params: tuple[Param, ...] = ()
    complete: bool = False
    available: Callable[[Mapping[str, Any]], tuple[bool, str]] = field(default=lambda params: (True, ""))
    description: str = ""
    example: Callable[[Path], dict] | None = None

    def check(self) -> None:
        """Raise :class:`SpecError` when malformed."""
        check_common(self)
        if self.verify is not None and self.tool is not None:
            raise SpecError(f"{self.name}: give verify (a Python function) or tool (a VNN-COMP tool folder), "
                            "not both")
        if self.tool is not None:
            must_be_callable(self, "tool", "tool(params) -> the tool's folder")
        else:
            must_be_callable(self, "verify", "verify(onnx_path, vnnlib_path, timeout_s, **params) -> dict")

