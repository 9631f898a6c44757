"""The read-only queries: ``results``, ``leaderboard``, ``runs``, ``compare``, ``history``, ``sql``.

A missing database or a bad name or value raises a usage error below (exit status 2, see
:mod:`harness.cli`); these commands only parse, call and print.
"""

from __future__ import annotations

import sys

import click

from harness.cli.options import DB_OPTION, FORMAT_OPTION, MACHINE_OPTION


@click.command()
@DB_OPTION
@click.option("--run", "run_id", type=int, default=None, help="run id [default: the latest run]")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "table"]), default="table", show_default=True)
def results(db: str, run_id: int | None, fmt: str) -> None:
    """One record per measurement of a run."""
    from harness.query.leaderboard import render
    from harness.query.leaderboard import results as query

    _echo(render(query(db, run_id), fmt))


@click.command()
@DB_OPTION
@click.option("--model", default=None)
@click.option("--dataset", default=None)
@click.option("--backend", default=None)
@click.option("--method", default=None)
@MACHINE_OPTION
@click.option("--sort", default=None, help="a metric column (best first), e.g. top1 or p90_ms@b1; adds a rank")
@click.option("--pareto", default=None, metavar="OBJ,OBJ[,OBJ]",
              help="only the Pareto frontier of two or three objectives, e.g. top1:max,p50_ms:min")
@click.option("--pareto-by", default="backend", show_default=True,
              help="one frontier per value of these columns (comma-separated), or 'none'")
@click.option("--columns", default=None,
              help="comma-separated metric columns, or 'all' [default: headline metrics for table, all otherwise]")
@FORMAT_OPTION
def leaderboard(db: str, model, dataset, backend, method, machine, sort, pareto, pareto_by, columns,
                fmt: str) -> None:
    """The wide leaderboard: the latest result of every cell on one machine.

    Rows that failed a gate (the flags column says which) are shown but never ranked, and never
    on a Pareto frontier."""
    from harness.query.leaderboard import board, frontier_of, metrics_shown, render, select_columns
    from harness.query.refs import QueryError

    if pareto and sort:
        raise QueryError("--pareto and --sort do not combine: a frontier is ordered by its first objective")
    if columns is None and fmt != "table":
        columns = "all"
    shown = "" if pareto and columns is None else columns  # a table of a frontier shows its objectives

    def answer(metrics):
        frame = board(db, model=model, dataset=dataset, backend=backend, method=method, sort=sort,
                      machine=machine, metrics=metrics)
        front = frontier_of(db, frame, pareto, pareto_by) if pareto else None
        if front is not None:
            frame = front.rows
        cols = ",".join(o.column for o in front.objectives) if front is not None and shown == "" else columns
        return front, select_columns(frame, cols)

    try:  # read only the columns shown
        front, table = answer(metrics_shown(shown, sort=sort, pareto=pareto))
    except QueryError:  # a name that is no column: the whole board's error names every column there is
        front, table = answer(None)
    if front is not None:
        click.echo(front.summary(), err=True)
    _echo(render(table, fmt))


@click.command()
@DB_OPTION
@FORMAT_OPTION
def runs(db: str, fmt: str) -> None:
    """The runs in the database, with their cell counts."""
    from harness.query.leaderboard import render
    from harness.query.leaderboard import runs as query

    _echo(render(query(db), fmt))


@click.command()
@click.argument("base")
@click.argument("new")
@DB_OPTION
@click.option("--threshold", type=float, default=0.05, show_default=True,
              help="smallest change that counts (0.05: 5%; absolute points for fractions such as top1)")
@click.option("--alpha", type=float, default=0.01, show_default=True,
              help="significance level of the Mann-Whitney U tests, after Benjamini-Hochberg adjustment")
@click.option("--history", type=int, default=10, show_default=True,
              help="earlier runs of a cell (same machine) that give the noise between runs; 0: none")
@click.option("--keep-unstable", is_flag=True,
              help="count changes of unstable measurements (CV over 10%) instead of discounting them")
@click.option("--test-dispersion", is_flag=True,
              help="test stdev, MAD and CV like timing metrics (by default they are never regressions)")
@click.option("--metric", "metrics", multiple=True, help="compare only this metric (repeatable)")
@click.option("--force", is_flag=True, help="compare runs of different machines anyway")
@click.option("--all", "show_all", is_flag=True, help="list every row, not only the changes")
@FORMAT_OPTION
def compare(base: str, new: str, db: str, threshold: float, alpha: float, history: int, keep_unstable: bool,
            test_dispersion: bool, metrics: tuple[str, ...], force: bool, show_all: bool, fmt: str) -> None:
    """Compare run NEW against run BASE: every cell and metric, with the test that fits it.

    BASE and NEW are run ids, 'latest', 'previous' (the run before the other one on the same
    machine, of the same suite file and tag) or a tag (its newest run; as BASE, its newest run
    before NEW). Timing is tested against the noise between runs (per-process values, or the
    cell's earlier runs), never raw samples; see docs/compare.md. Exit status 1 when a significant
    regression beyond the threshold is found, so a CI job can fail on it.
    """
    from harness.query.compare import DISPLAY, compare_runs
    from harness.query.leaderboard import render

    result = compare_runs(db, base, new, threshold=threshold, alpha=alpha, force=force,
                          metrics=list(metrics) or None, history=history, keep_unstable=keep_unstable,
                          test_dispersion=test_dispersion, every_row=show_all)
    listing = result.listing(show_all)
    if listing:
        _echo(render(listing, fmt))
    elif fmt != "table":  # nothing to list: the columns still head a CSV or Markdown table
        from harness.query.board import Board

        _echo(render(Board(list(DISPLAY), []), fmt))
    click.echo(result.summary(), err=True)
    sys.exit(result.exit_code)


@click.command()
@DB_OPTION
@click.option("--metric", required=True, help="the metric, e.g. p50_ms or top1")
@click.option("--model", default=None)
@click.option("--dataset", default=None)
@click.option("--method", default=None)
@click.option("--backend", default=None)
@click.option("--batch-size", type=int, default=None, help="one batch size of a batched metric")
@click.option("--tag", default=None, help="only runs with this tag")
@MACHINE_OPTION
@FORMAT_OPTION
def history(db: str, metric: str, model, dataset, method, backend, batch_size, tag, machine, fmt: str) -> None:
    """A metric over runs, oldest first: one row per run and matching cell."""
    from harness.query.history import history as query
    from harness.query.leaderboard import render

    frame = query(db, metric, model=model, dataset=dataset, method=method, backend=backend, machine=machine,
                  tag=tag, batch_size=batch_size)
    if frame.empty:
        click.echo("no results match", err=True)
        sys.exit(0)
    _echo(render(frame, fmt))


@click.command()
@click.argument("query")
@DB_OPTION
@FORMAT_OPTION
@click.option("--timeout", type=click.FloatRange(min=0), default=None,
              help="stop the statement after this many seconds; 0: no limit "
                   "[default: $HARNESS_QUERY_TIMEOUT_S, else 60]")
def sql(query: str, db: str, fmt: str, timeout: float | None) -> None:
    """Run one read-only SQL statement (SELECT ...) on the leaderboard; writes, ATTACH and
    state-changing PRAGMAs are refused, and Ctrl-C or the time limit stops it."""
    from harness.query.leaderboard import render
    from harness.query.sql import run_sql

    _echo(render(run_sql(db, query, timeout_s=timeout), fmt))


def _echo(text: str) -> None:
    """Print rendered output with exactly one final newline: CSV ends with its own, and a second one
    would make ``| tail -1`` read an empty line."""
    click.echo(text.rstrip("\n"))


COMMANDS = [results, leaderboard, runs, compare, history, sql]
