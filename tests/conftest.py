"""Shared fixtures: the project's tests use the same fixtures it offers plugin authors."""

pytest_plugins = ["harness.testing"]
