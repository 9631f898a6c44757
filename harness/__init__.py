"""harness: a plugin-based benchmarking harness for compressed neural networks.

Importing this package is cheap on purpose (no torch, no pandas): the CLI's
``--help`` and ``plugins`` paths must stay instant.
"""

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations: ``@hookimpl def harness_register_methods(register): ...``
hookimpl = pluggy.HookimplMarker("harness")

__all__ = ["__version__", "hookimpl"]
