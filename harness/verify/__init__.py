"""Neural-network verification: VNN-LIB properties, verdicts and witnesses, verifier processes,
benchmarks with planted counterexamples (after SoundnessBench) and their scoring (VNN-COMP's).

Public for verifier authors: :mod:`harness.verify.vnnlib` (read and write properties),
:mod:`harness.verify.verdicts` (the VNN-COMP result file), :mod:`harness.verify.attack` (PGD).
Modules import numpy, onnx, onnxruntime or torch inside functions only where they need them.
"""
