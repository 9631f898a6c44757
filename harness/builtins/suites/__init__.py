"""The standard suites, registered as built-in plugins through the public hooks."""
