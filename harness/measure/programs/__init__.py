"""Runner programs that execute an artifact outside the harness's process (see :mod:`harness.measure.remote`).

Each runner is a standalone program: this folder's files are copied to where it runs (an
emulated root, a remote device) and need only their runtime there.
"""
