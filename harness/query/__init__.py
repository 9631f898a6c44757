"""Reading the leaderboard: run references, columns and the ranked leaderboard, Pareto fronts, comparing
runs, history and read-only SQL.

Level 6: imports :mod:`harness.store` and :mod:`harness.core` (and anything below it).
"""
