"""The command line: parses arguments and delegates; no logic of its own.

Exit status: 0 success (every cell ok or skipped with a reason), 1 when a cell
failed (its record kept), 2 for a usage, suite-file or plugin error.
"""

from __future__ import annotations

import json
import sys

import click

from harness import __version__

DB_OPTION = click.option("--db", default="results/leaderboard.db", show_default=True,
                         envvar="HARNESS_DB", help="leaderboard database (SQLite)")
FORMATS = ["table", "json", "csv", "markdown"]


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _host(ctx: click.Context):
    from harness.plugins import PluginError, load_host

    try:
        return load_host(ctx.obj["plugins_dir"])
    except PluginError as exc:
        _fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option("--plugins-dir", type=click.Path(), envvar="HARNESS_PLUGINS_DIR", default=None,
              help="also load every *.py file in this folder as a plugin")
@click.pass_context
def cli(ctx: click.Context, plugins_dir: str | None) -> None:
    """Benchmark compressed neural networks: accuracy, latency and size suites over a matrix of
    models, datasets, methods and backends, into a SQLite leaderboard."""
    ctx.ensure_object(dict)
    ctx.obj["plugins_dir"] = plugins_dir


@cli.command()
@click.argument("suite", type=click.Path())
@DB_OPTION
@click.option("--cache-dir", type=click.Path(), envvar="HARNESS_CACHE_DIR", default=None,
              help="artifact and weights cache [default: ~/.cache/harness]")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="continue the latest run of this suite file, or start a new run measuring every cell")
@click.option("--retry-failed", is_flag=True, help="when resuming, run failed cells again")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar and no leaderboard")
@click.option("--leaderboard/--no-leaderboard", "show", default=True, show_default=True,
              help="print the leaderboard at the end")
@click.pass_context
def run(ctx: click.Context, suite: str, db: str, cache_dir: str | None, resume: bool, retry_failed: bool,
        quiet: bool, show: bool) -> None:
    """Run (or resume) the suite file SUITE."""
    from harness.runner import run_suite
    from harness.suitefile import SuiteFileError

    host = _host(ctx)

    def announce(plan):
        if not quiet:
            skipped = sum(1 for c in plan.cells if c.skip_reason)
            click.echo(f"suite {plan.name}: {len(plan.cells)} cells ({skipped} skipped by plan), db {db}",
                       err=True)

    try:
        summary = run_suite(suite, db=db, cache_dir=cache_dir, resume=resume, retry_failed=retry_failed,
                            progress=not quiet, host=host, on_plan=announce)
    except SuiteFileError as exc:
        _fail(f"invalid suite file\n{exc}")
    except KeyboardInterrupt:
        click.echo("interrupted: run 'harness run' again to resume", err=True)
        sys.exit(130)
    verb = "resumed" if summary.resumed else "started"
    click.echo(f"run {summary.run_id} ({verb}): {summary.executed} cells recorded now "
               f"({summary.ok} ok, {summary.skipped} skipped, {summary.failed} failed), "
               f"{summary.already_done} already recorded", err=True)
    for line in summary.failures:
        click.echo(f"  FAILED {line}", err=True)
    if show and not quiet:
        from harness.leaderboard import leaderboard, render, select_columns

        click.echo(render(select_columns(leaderboard(db), None), "table"))
    sys.exit(summary.exit_code)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List plugins: their kinds, what they registered, version and origin."""
    host = _host(ctx)
    infos = [p.as_dict() for p in host.registry.plugins.values()]
    if as_json:
        click.echo(json.dumps(infos, indent=1))
        return
    for p in infos:
        origin = p["source"] + (f" {p['distribution']} {p['version']}" if p["distribution"] else "")
        click.echo(f"{p['name']}  [{origin}]  {p['location'] or ''}")
        for kind, names in p["registered"].items():
            click.echo(f"    {kind}: {', '.join(names)}")


def _readonly(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except FileNotFoundError as exc:
        _fail(str(exc))
    except KeyError as exc:
        _fail(exc.args[0] if exc.args else str(exc))


@cli.command()
@DB_OPTION
@click.option("--run", "run_id", type=int, default=None, help="run id [default: the latest run]")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "table"]), default="table", show_default=True)
def results(db: str, run_id: int | None, fmt: str) -> None:
    """One record per measurement of a run."""
    from harness.leaderboard import render
    from harness.leaderboard import results as query

    rows = _readonly(query, db, run_id)
    click.echo(render(rows, fmt))


@cli.command()
@DB_OPTION
@click.option("--model", default=None)
@click.option("--dataset", default=None)
@click.option("--backend", default=None)
@click.option("--method", default=None)
@click.option("--sort", default=None, help="a metric column (best first), e.g. top1 or p90_ms@b1")
@click.option("--columns", default=None,
              help="comma-separated metric columns, or 'all' [default: headline metrics for table, all otherwise]")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def leaderboard(db: str, model, dataset, backend, method, sort, columns, fmt: str) -> None:
    """The wide leaderboard: the latest result of every cell."""
    from harness.leaderboard import leaderboard as query
    from harness.leaderboard import render, select_columns

    frame = _readonly(query, db, model=model, dataset=dataset, backend=backend, method=method, sort=sort)
    if columns is None and fmt != "table":
        columns = "all"
    click.echo(render(_readonly(select_columns, frame, columns), fmt))


@cli.command()
@DB_OPTION
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def runs(db: str, fmt: str) -> None:
    """The runs in the database, with their cell counts."""
    from harness.leaderboard import render
    from harness.leaderboard import runs as query

    click.echo(render(_readonly(query, db), fmt))


@cli.command()
@DB_OPTION
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="write the report to this file [default: standard output]")
def studies(db: str, output: str | None) -> None:
    """Tables (mean ± std over seeds) and known findings of the literature, each stated as reproduced
    or not by the data in the database, as Markdown."""
    from pathlib import Path

    from harness.studies import report

    text = _readonly(report, db)
    if output is None:
        click.echo(text, nl=False)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text)
    click.echo(f"wrote {output}", err=True)


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


if __name__ == "__main__":  # pragma: no cover
    main()
