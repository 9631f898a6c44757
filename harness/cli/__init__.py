"""The command line: one module per command group; each command parses its arguments and delegates.

- :mod:`harness.cli.run`: ``run``, ``setup`` (measure);
- :mod:`harness.cli.plugins`: ``plugins``, ``new-plugin``, ``check-plugin`` (author);
- :mod:`harness.cli.query`: ``results``, ``leaderboard``, ``runs``, ``compare``, ``history``, ``sql`` (read);
- :mod:`harness.cli.report`: ``report``, ``serve``, ``studies`` (present);
- :mod:`harness.cli.store`: ``merge``.

Exit status: 0 success (every cell ok or skipped with a reason), 1 when a cell failed (its record
kept), 2 for a usage, suite-file or plugin error. Errors become exit statuses here, in
:class:`HarnessGroup`, and nowhere else: a :class:`~harness.core.errors.UsageError` raised anywhere
below is ``Error: <message>`` on standard error and exit status 2, with no traceback; a
:class:`~harness.core.errors.StepFailed` is the same with exit status 1; anything else is a bug and
keeps its traceback. Commands import what they use inside their function, so ``harness --help``
loads neither torch nor pandas.
"""

from __future__ import annotations

import click

from harness import __version__
from harness.cli import plugins, query, report, run, store
from harness.core.errors import StepFailed, UsageError
from harness.core.paths import PLUGINS_DIR_ENV

#: Exit status of a usage error (as click's own usage errors).
USAGE_EXIT = 2
#: Exit status of a step that ran and failed (as a failed cell).
FAILED_EXIT = 1
#: Exit status after Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED_EXIT = 130


class ErrorExit(click.ClickException):
    """What :class:`HarnessGroup` turns a deliberate harness error into: click prints ``Error: <message>``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def message_of(exc: UsageError | StepFailed) -> str:
    """The text shown after ``Error: ``: the error's heading line, if it has one, then its message."""
    heading = getattr(exc, "heading", "")
    return f"{heading}\n{exc}" if heading else str(exc)


class HarnessGroup(click.Group):
    """The ``harness`` group: the one place where errors are mapped to exit statuses."""

    def invoke(self, ctx: click.Context):
        """Run the command; a usage error exits 2 and a failed step 1, both with their message only."""
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise ErrorExit(message_of(exc), USAGE_EXIT) from exc
        except StepFailed as exc:
            raise ErrorExit(message_of(exc), FAILED_EXIT) from exc
        except KeyboardInterrupt as exc:  # a long query or report stopped by Ctrl-C: a message, not a traceback
            raise ErrorExit("interrupted (Ctrl-C); nothing was written", INTERRUPTED_EXIT) from exc
        except Exception as exc:
            # A library may wrap our error in its own (pandas turns any error of a query into its
            # DatabaseError): it is still ours.
            cause = _usage_cause(exc)
            if cause is None:
                raise
            raise ErrorExit(message_of(cause), USAGE_EXIT) from exc


def _usage_cause(exc: BaseException) -> UsageError | None:
    """The :class:`UsageError` that ``exc`` was raised from (its ``__cause__`` chain), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, UsageError):
            return exc
        exc = exc.__cause__
    return None


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option("--plugins-dir", type=click.Path(), envvar=PLUGINS_DIR_ENV, default=None,
              help="also load every *.py file in this folder as a plugin")
@click.pass_context
def cli(ctx: click.Context, plugins_dir: str | None) -> None:
    """Benchmark compressed neural networks: accuracy, latency and size suites over a matrix of
    models, datasets, methods and backends, into a SQLite leaderboard."""
    ctx.ensure_object(dict)
    ctx.obj["plugins_dir"] = plugins_dir


for _group in (run, plugins, query, report, store):
    for _command in _group.COMMANDS:
        cli.add_command(_command)
del _group, _command


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


if __name__ == "__main__":  # pragma: no cover
    main()
