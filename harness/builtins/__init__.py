"""Built-in plugins: the standard suites and the built-in verifier adapter. They are registered exactly as
external plugins are and import only :mod:`harness.api`, so each is a template an author can copy.
"""
