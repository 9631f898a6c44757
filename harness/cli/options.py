"""Options and helpers shared by the command modules (no commands here)."""

from __future__ import annotations

import click

from harness.core.paths import CACHE_ENV, DB_ENV, DEFAULT_DB

DB_OPTION = click.option("--db", default=DEFAULT_DB, show_default=True, envvar=DB_ENV,
                         help="leaderboard database (SQLite)")
FORMATS = ["table", "json", "csv", "markdown"]
FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
MACHINE_OPTION = click.option(
    "--machine", default=None, help="a machine-hash prefix, or 'all' [default: the machine of the latest run]; "
    "latency is only ranked within one machine")


def cache_option(help_text: str):
    """``--cache-dir`` (also ``$HARNESS_CACHE_DIR``), with the command's own help text."""
    return click.option("--cache-dir", type=click.Path(), envvar=CACHE_ENV, default=None, help=help_text)


def load_host(ctx: click.Context):
    """The plugin host, with the ``--plugins-dir`` of the group (a plugin error is a usage error)."""
    from harness.plugin.manager import load_host as load

    return load(ctx.obj["plugins_dir"])
