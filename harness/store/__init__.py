"""The leaderboard store: SQLite through sqlite-utils, append-only named migrations, the one checked way to
open a database, and merging stores.

Level 1: imports only :mod:`harness.core`.
"""
