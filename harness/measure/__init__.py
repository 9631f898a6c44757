"""Measurement core: the timing methodology, the reference backend, remote runner sessions and their
programs, model analysis (parameters, FLOPs, packed sizes) and the claims checker.

Level 2: imports :mod:`harness.plugin` and :mod:`harness.core`.
"""
