"""Reports for people: the HTML report, ``harness serve`` (datasette, read-only) and the studies that
reproduce published findings.

Level 7: imports :mod:`harness.query` and everything below it.
"""
