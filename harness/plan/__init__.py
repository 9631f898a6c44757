"""The planner: suite files parsed and validated, the matrix expanded into cells, pipelines composed,
baselines added and incompatible cells marked.

Level 3: imports :mod:`harness.verify`, :mod:`harness.measure`, :mod:`harness.plugin`, :mod:`harness.core`.
"""
