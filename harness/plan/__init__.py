"""The planner: suite files parsed and validated, the matrix expanded into cells, pipelines composed,
baselines added and incompatible cells marked.

- :mod:`~harness.plan.cells`: the cell model (:class:`Cell`, its stored key; :class:`Plan`; ``BASELINE_METHOD``)
- :mod:`~harness.plan.suitefile`: reading a suite file, its top level and settings (``load_plan``)
- :mod:`~harness.plan.entries`: the one reader of a table's lists (entries, grids, paths)
- :mod:`~harness.plan.matrix` and :mod:`~harness.plan.verification`: the two kinds of table
- :mod:`~harness.plan.pipeline`: methods composed in order
- :mod:`~harness.plan.compat`: duplicates, baselines, order, and what cannot run

Level 3: imports :mod:`harness.verify`, :mod:`harness.measure`, :mod:`harness.plugin`, :mod:`harness.core`.
"""
