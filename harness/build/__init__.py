"""Building what cells run on: reference weights, compressed artifacts cached by content hash, benchmark
networks compressed by a method, and the training helpers methods share.

Level 4: imports :mod:`harness.plan` and everything below it.
"""
