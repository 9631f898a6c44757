"""The plugin contract: hook specifications, the plugin manager and typed registry, the specs each kind
registers, typed parameters and the timing plan a backend follows.

Level 1: imports only :mod:`harness.core`.
"""
