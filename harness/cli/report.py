"""``harness report``, ``serve`` and ``studies``: the leaderboard as a page, a browser, a study report."""

from __future__ import annotations

import sys

import click

from harness.cli.options import DB_OPTION, MACHINE_OPTION
from harness.core.paths import DEFAULT_REPORT


@click.command()
@DB_OPTION
@click.option("-o", "--output", default=DEFAULT_REPORT, show_default=True, type=click.Path())
@MACHINE_OPTION
def report(db: str, output: str, machine: str | None) -> None:
    """Write one self-contained HTML report: leaderboard, Pareto plots, history charts."""
    from harness.report.html import write_report

    click.echo(f"wrote {write_report(db, output, machine=machine)}", err=True)


@click.command()
@DB_OPTION
@click.option("--port", type=int, default=8001, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind (the default keeps it on this machine)")
def serve(db: str, port: int, host: str) -> None:
    """Browse the leaderboard in datasette, read-only, with canned queries (needs the [serve] extra)."""
    from harness.report.serve import serve as run_server

    sys.exit(run_server(db, port=port, host=host))


@click.command()
@DB_OPTION
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="write the report to this file [default: standard output]")
@click.option("--findings", "findings", multiple=True, type=click.Path(dir_okay=False),
              help="a findings file (repeatable) [default: NAME.findings.toml beside each run's suite file]")
def studies(db: str, output: str | None, findings: tuple[str, ...]) -> None:
    """Tables (mean ± std over seeds) and known findings of the literature, each stated as reproduced
    or not by the data in the database, as Markdown."""
    from pathlib import Path

    from harness.report.studies import report as study_report

    text = study_report(db, list(findings) or None)
    if output is None:
        click.echo(text, nl=False)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text)
    click.echo(f"wrote {output}", err=True)


COMMANDS = [report, serve, studies]
