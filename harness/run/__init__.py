"""Running a plan: the driver (the only writer to the store), the task contract between the driver and
the executors (:mod:`harness.run.task`: ``CellTask`` in, ``CellResult`` out), the local and Ray
executors, the worker that executes one cell, and the machine fingerprint.

Level 5: imports :mod:`harness.build` and everything below it.
"""
