"""Hook specifications: the whole contract between the host and its plugins.

Every extension point is a ``harness_register_*`` hook that receives a
``register`` callable. Call it once per thing the plugin provides, with a spec
object from :mod:`harness.api`. The host validates each spec at the moment it
is registered and names the plugin in every error; a name registered twice is
an error that names both plugins.

Plugin modules must not import heavy libraries (torch, onnxruntime, pandas) at
import time: do it inside the callables of the specs, which only run when a
cell needs them.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("harness")


@hookspec
def harness_register_models(register: Callable) -> None:
    """Register models.

    Fires once, when the plugin manager is loaded.

    :param register: call ``register(ModelSpec(...))`` for each model.
    """


@hookspec
def harness_register_datasets(register: Callable) -> None:
    """Register datasets.

    Fires once, when the plugin manager is loaded.

    :param register: call ``register(DatasetSpec(...))`` for each dataset.
    """


@hookspec
def harness_register_methods(register: Callable) -> None:
    """Register compression methods (pruning, quantization, ...).

    Fires once, when the plugin manager is loaded.

    :param register: call ``register(MethodSpec(...))`` for each method.
    """


@hookspec
def harness_register_backends(register: Callable) -> None:
    """Register hardware backends (runtimes that execute an artifact and time it).

    Fires once, when the plugin manager is loaded.

    :param register: call ``register(BackendSpec(...))`` for each backend.
    """


@hookspec
def harness_register_suites(register: Callable) -> None:
    """Register suites: things that turn one cell into measurements.

    Fires once, when the plugin manager is loaded. The standard ``accuracy``,
    ``latency`` and ``size`` suites are registered through this same hook.

    :param register: call ``register(SuiteSpec(...))`` for each suite.
    """


@hookspec
def harness_register_verifiers(register: Callable) -> None:
    """Register neural-network verifiers (an ONNX network and a VNN-LIB property in; holds,
    violated with a witness, unknown or timeout out).

    Fires once, when the plugin manager is loaded. The ``vnncomp`` verifier (any VNN-COMP tool
    folder) is registered through this same hook; the ``verification`` and ``robustness`` suites
    run the verifiers a suite file names.

    :param register: call ``register(VerifierSpec(...))`` for each verifier.
    """
