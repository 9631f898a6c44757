"""Shared fixtures: the project's tests use the same fixtures it offers plugin authors.

``pytester`` runs pytest sessions inside tests: it checks the fixtures as an author uses them.

The suite runs in parallel (pytest-xdist, ``-n auto --dist loadfile`` in ``pyproject.toml``): each
test file runs whole on one worker, so a module-scoped fixture (one real run of a suite that many
tests read, a generated project, a Ray instance's tests) is built once, as in a serial run, and the
tests of one file never race each other. Session-scoped fixtures are built once per worker.
"""

pytest_plugins = ["harness.testing", "pytester"]
