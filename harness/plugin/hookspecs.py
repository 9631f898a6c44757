"""Hook specifications: the whole contract between the host and its plugins, and its manual.

Every extension point is a ``harness_register_<kind>s`` hook; a plugin implements the ones it needs
with ``@hookimpl`` from :mod:`harness.api`. What follows holds for every hook; each hook's own
docstring says only what differs.

When registration runs
----------------------
Every time the plugins are loaded (:func:`harness.plugin.manager.load_host`), each registration hook
runs once per plugin that implements it, and that happens in many processes:

- the driver: every ``harness`` command that needs plugins (``run``, ``plugins``, ``check-plugin``,
  ``new-plugin``, ...);
- every worker process that runs cells, and every fresh process the latency suite times in;
- every verifier child (``python -m harness.verify.child``), that is once per verified instance;
- every conformance worker of ``harness check-plugin``.

So a hook must be **cheap and free of side effects**: build spec objects and call ``register``;
nothing else. It must not import heavy libraries (torch, onnxruntime, pandas), read or write files,
reach the network, start processes, load data or weights, or depend on the order in which plugins
are found. Heavy work belongs in the callables of the specs, which run only when a cell needs them.
The same goes for the plugin module's top level, which is imported as often.

What ``register`` does
----------------------
``register`` takes one spec of the hook's kind per call (a spec class from :mod:`harness.api`) and
validates it on the spot. A malformed spec, an object of another kind, a list of specs, a name
another plugin already registered for this kind, or a hook that returns something instead of
calling ``register`` is a :class:`~harness.plugin.registry.PluginError` that names the plugin (and
its distribution) and says what to change: a thing that silently goes missing corrupts a
leaderboard. Names are unique per kind; the same name in two kinds is fine. The hook returns
``None``.

``tryfirst``, ``trylast`` and hook wrappers
-------------------------------------------
They do not apply, and ``@hookimpl(tryfirst=True)``, ``trylast=True``, ``hookwrapper=True`` or
``wrapper=True`` on a registration hook is a :class:`~harness.plugin.registry.PluginError` when the
plugin is loaded. Registration has no result to order or wrap: every plugin's registrations count,
a name may be registered once only, so no plugin overrides another (a fallback is a different name,
chosen in the suite file), and the order plugins are found in decides only the order of listings.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from harness.plugin.specs import BackendSpec, DatasetSpec, MethodSpec, ModelSpec, SuiteSpec, VerifierSpec

hookspec = pluggy.HookspecMarker("harness")

#: The ``register`` callable each hook receives: one spec of its kind per call.
RegisterModel = Callable[[ModelSpec], None]
RegisterDataset = Callable[[DatasetSpec], None]
RegisterMethod = Callable[[MethodSpec], None]
RegisterBackend = Callable[[BackendSpec], None]
RegisterSuite = Callable[[SuiteSpec], None]
RegisterVerifier = Callable[[VerifierSpec], None]


# --------------------------------------------------------------------------- what is compressed


@hookspec
def harness_register_models(register: RegisterModel) -> None:
    """Register models: architectures and the recipes of their reference weights.

    :param register: call ``register(ModelSpec(...))`` once per model. ``build`` and ``train`` run
        later, in the cell's worker; the host caches trained weights.
    """


@hookspec
def harness_register_datasets(register: RegisterDataset) -> None:
    """Register datasets: the train, calibration and test splits cells use.

    :param register: call ``register(DatasetSpec(...))`` once per dataset. ``load`` runs later, in
        the worker that needs the data; never read the data here.
    """


# --------------------------------------------------------------------------- how it is compressed


@hookspec
def harness_register_methods(register: RegisterMethod) -> None:
    """Register compression methods (pruning, quantization, low-rank, ...).

    :param register: call ``register(MethodSpec(...))`` once per method. ``apply`` and ``claims``
        run later, when an artifact is built (once per artifact: the cache keeps it).
    """


# --------------------------------------------------------------------------- where and how it is measured


@hookspec
def harness_register_backends(register: RegisterBackend) -> None:
    """Register hardware backends: runtimes that execute an artifact and own its timing loop.

    :param register: call ``register(BackendSpec(...))`` once per backend. Its ``available`` runs in
        the driver when cells are planned, so it is cheap too; ``session`` runs in the worker.
    """


@hookspec
def harness_register_suites(register: RegisterSuite) -> None:
    """Register suites: things that turn one cell into measurements.

    The standard ``accuracy``, ``latency``, ``size``, ``soundness``, ``verification`` and
    ``robustness`` suites are built-in plugins registered through this same hook.

    :param register: call ``register(SuiteSpec(...))`` once per suite. ``run`` runs later, in the
        cell's worker.
    """


@hookspec
def harness_register_verifiers(register: RegisterVerifier) -> None:
    """Register neural-network verifiers: an ONNX network and a VNN-LIB property in; holds, violated
    with a witness, unknown or timeout out.

    The ``vnncomp`` verifier (any VNN-COMP tool folder) is a built-in plugin registered through this
    same hook; the ``verification`` and ``robustness`` suites run the verifiers a suite file names.
    This hook also runs in every verifier child, once per instance: it above all must stay cheap.

    :param register: call ``register(VerifierSpec(...))`` once per verifier. ``verify`` (or the
        ``tool``'s scripts) runs later, in a process of its own per instance.
    """
