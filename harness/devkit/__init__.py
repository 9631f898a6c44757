"""The plugin author's kit: ``harness new-plugin`` (scaffold and templates), ``harness check-plugin``
(conformance clauses) and the toy model, data and method the fixtures use.

Level 8: may import any host layer below the CLI.
"""
