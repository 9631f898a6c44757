"""One error hierarchy: everything the harness raises on purpose is a :class:`HarnessError`.

:class:`UsageError` is the user's to fix (a suite file, a key, a plugin, a value); the CLI maps it to
exit status 2 with its message and no traceback, in one place (:mod:`harness.cli`). A
:class:`StepFailed` is a step that ran and failed (exit status 1, its message). Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class UsageError(HarnessError):
    """Bad input the user can fix; the message names the file, key, plugin or value, and the reason.

    :param file: the file at fault (a suite file, a database, a plugin file), when there is one.
    :param key: the key or option at fault (``matrix[0].methods[1].sparsity``), when there is one.
    :param plugin: the plugin at fault (its label), when there is one.
    """

    #: A line the CLI prints before the message (``invalid suite file``); empty: none.
    heading = ""

    def __init__(self, message: str = "", *, file: str | None = None, key: str | None = None,
                 plugin: str | None = None) -> None:
        super().__init__(message)
        self.file, self.key, self.plugin = file, key, plugin


class UnknownName(UsageError, KeyError):
    """A name no plugin registered (``unknown method 'foo' (known: ...)``).

    Also a :class:`KeyError`, so a mapping-style lookup keeps working; ``str()`` is the message.
    """

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, list(known)
        super().__init__(f"unknown {kind} {name!r} (known: {', '.join(self.known) or 'none'})")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDependency(UsageError, ImportError):
    """An optional dependency is not installed; the message names the extra to install.

    Also an :class:`ImportError`, so code that probes for the dependency keeps working.
    """


class StepFailed(HarnessError):
    """A step the user asked for ran and failed (a backend's setup): the CLI exits 1 with the message.

    Not a usage error: the input was fine, the work did not succeed (as a failed cell is exit 1 too).
    """
