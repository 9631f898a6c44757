"""``harness merge``: several machines' leaderboards in one file."""

from __future__ import annotations

import click


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="the merged database (created or extended)")
def merge(sources: tuple[str, ...], output: str) -> None:
    """Merge leaderboards of several machines into OUTPUT, without duplicates (runs matched by content)."""
    from harness.store.merge import merge as do_merge

    report = do_merge(list(sources), output)
    click.echo(f"{output}: {report.runs_added} runs added, {report.runs_matched} already there; "
               f"{report.cells_added} cells added, {report.cells_skipped} already there; "
               f"{report.measurements_added} measurements added", err=True)


COMMANDS = [merge]
