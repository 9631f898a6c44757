"""Shared fixtures: the project's tests use the same fixtures it offers plugin authors.

``pytester`` runs pytest sessions inside tests: it checks the fixtures as an author uses them.
"""

pytest_plugins = ["harness.testing", "pytester"]
