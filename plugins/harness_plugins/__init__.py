"""First-party plugins for the harness.

Each module is a pluggy plugin loaded through the ``harness`` entry-point group.
None of them imports torch, onnxruntime, onnx, scikit-learn, Pillow or numpy at
import time: those imports live inside the callables of the specs, which run only
when a cell needs them, so ``harness plugins`` stays instant.
"""

__version__ = "0.1.0"
