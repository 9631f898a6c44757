"""One error hierarchy: everything the harness raises on purpose is a :class:`HarnessError`.

:class:`UsageError` is the user's to fix (a suite file, a key, a plugin, a value); the CLI maps it to
exit status 2 with its message and no traceback, in one place (:mod:`harness.cli`). A
:class:`StepFailed` is a step that ran and failed (exit status 1, its message). Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


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


def unknown_name(what: str, name: str, known: Iterable[str], none: str = "none") -> str:
    """``unknown parameter 'sparsty': did you mean 'sparsity'? (known: ...)``: the message for a name that
    is not among ``known``, with the nearest known name when one is close (:mod:`difflib`, as pluggy's
    users know from a misspelled hook)."""
    known = list(known)
    import difflib  # only when a name is wrong: every command imports this module

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) if isinstance(name, str) else []
    hint = f": did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(known) or none})"


class UnknownName(UsageError, KeyError):
    """A name no plugin registered (``unknown method 'foo' (known: ...)``).

    Also a :class:`KeyError`, so a mapping-style lookup keeps working; ``str()`` is the message.
    """

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, list(known)
        super().__init__(unknown_name(kind, name, self.known))

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


#: At most this many characters of an exception's message go into a reason (a cell's, a check's):
#: a plugin's 100 MB message must not flood the driver's output or the store.
REASON_CHARS = 2000
#: At most this many characters (the last ones) of a traceback are kept.
TRACEBACK_CHARS = 20000


def _clip(text: str, limit: int, keep: str = "head") -> str:
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    if keep == "tail":
        return f"... ({cut} characters cut)\n" + text[-limit:]
    return text[:limit] + f" ... ({cut} more characters)"


def exception_type(exc: BaseException) -> str:
    """The exception's class name, even from a class whose metaclass breaks ``__name__``."""
    try:
        name = type(exc).__name__
        return name if isinstance(name, str) else object.__repr__(type(exc))
    except Exception:  # noqa: BLE001 - a hostile metaclass
        return "<exception>"


def exception_text(exc: BaseException, limit: int = REASON_CHARS) -> str:
    """``str(exc)``, defensively: when ``__str__`` raises (or returns a non-string), a note saying so.

    Every place that turns a plugin's exception into a reason goes through here (or
    :func:`describe_exception`): formatting a plugin's exception must never raise, nor lose the
    failure it describes.
    """
    try:
        text = str(exc)
    except BaseException as inner:  # noqa: BLE001 - even KeyboardInterrupt from a __str__ is the plugin's
        return f"(str() of the exception raised {exception_type(inner)})"
    return _clip(text, limit)


def describe_exception(exc: BaseException, limit: int = REASON_CHARS) -> str:
    """``Type: message`` (``Type`` alone when the message is empty); never raises, at most ``limit`` characters
    of message."""
    text = exception_text(exc, limit)
    name = exception_type(exc)
    return f"{name}: {text}" if text else name


def format_traceback(exc: BaseException, limit: int = TRACEBACK_CHARS) -> str:
    """The traceback of ``exc`` (its last ``limit`` characters); never raises."""
    import traceback

    try:
        text = "".join(traceback.format_exception(exc))
    except BaseException as inner:  # noqa: BLE001
        return f"(the traceback could not be formatted: {describe_exception(inner)})"
    return _clip(text, limit, keep="tail")
