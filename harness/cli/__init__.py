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
    from harness.plugin.manager import PluginError, load_host

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
@click.option("--tag", default=None, help="name the run (e.g. nightly) for compare and history; "
              "resuming continues the latest run of the suite file with this tag")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: worker processes on this machine; ray: a Ray cluster (pip install "
                   "'compression-harness[ray]')")
@click.option("--address", default=None, envvar="RAY_ADDRESS",
              help="with --executor ray: an existing cluster's address [default: start a local instance]")
@click.option("--ray-wait", type=float, default=10.0, show_default=True,
              help="with --executor ray: seconds to wait for a node offering a cell's resources before "
                   "recording it skipped")
@click.pass_context
def run(ctx: click.Context, suite: str, db: str, cache_dir: str | None, resume: bool, retry_failed: bool,
        quiet: bool, show: bool, tag: str | None, executor: str, address: str | None, ray_wait: float) -> None:
    """Run (or resume) the suite file SUITE."""
    from harness.plan.suitefile import SuiteFileError
    from harness.query.refs import QueryError, check_tag
    from harness.run.driver import run_suite

    try:
        check_tag(tag)
    except QueryError as exc:
        _fail(f"--tag: {exc}")
    host = _host(ctx)

    def announce(plan):
        if not quiet:
            skipped = sum(1 for c in plan.cells if c.skip_reason)
            click.echo(f"suite {plan.name}: {len(plan.cells)} cells ({skipped} skipped by plan), db {db}",
                       err=True)

    try:
        summary = run_suite(suite, db=db, cache_dir=cache_dir, resume=resume, retry_failed=retry_failed,
                            progress=not quiet, host=host, on_plan=announce, tag=tag, executor=executor,
                            ray_address=address, ray_wait_s=ray_wait)
    except SuiteFileError as exc:
        _fail(f"invalid suite file\n{exc}")
    except ImportError as exc:
        _fail(str(exc))
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
        from harness.query.leaderboard import leaderboard, render, select_columns

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


@cli.command()
@click.argument("backend")
@click.option("--cache-dir", type=click.Path(), envvar="HARNESS_CACHE_DIR", default=None,
              help="where to install [default: ~/.cache/harness]")
@click.pass_context
def setup(ctx: click.Context, backend: str, cache_dir: str | None) -> None:
    """Prepare what BACKEND needs (e.g. 'wasm': the pinned onnxruntime-web; 'arm': the emulated root)."""
    from pathlib import Path

    from harness.core.paths import cache_dir as default_cache

    host = _host(ctx)
    try:
        spec = host.registry.get("backend", backend).spec
    except KeyError as exc:
        _fail(exc.args[0])
    if spec.setup is None:
        click.echo(f"backend {backend} needs no setup")
        return
    try:
        message = spec.setup(Path(cache_dir) if cache_dir else default_cache())
    except Exception as exc:  # noqa: BLE001 - the backend's own reason is the message
        click.echo(f"Error: setup of {backend} failed: {exc}", err=True)
        sys.exit(1)
    click.echo(message)


@cli.command("new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(["method", "model", "dataset", "backend", "verifier"]), required=True,
              help="what the plugin registers")
@click.option("--dir", "parent", type=click.Path(file_okay=False), default=".", show_default=True,
              help="where to create the NAME folder")
@click.pass_context
def new_plugin(ctx: click.Context, name: str, kind: str, parent: str) -> None:
    """Write a complete, installable plugin package NAME/ with a working example of KIND."""
    from harness.devkit.scaffold import ScaffoldError, new_plugin

    try:
        made = new_plugin(name, kind, parent, plugins_dir=ctx.obj["plugins_dir"])
    except ScaffoldError as exc:
        _fail(str(exc))
    click.echo(made.summary())


@cli.command("check-plugin")
@click.argument("target")
@click.option("--model", default=None, help="model to check methods, backends and suites with [default: toy-cnn]")
@click.option("--dataset", default=None, help="dataset to check models and the rest with [default: toy-blobs]")
@click.option("--param", "params", multiple=True, metavar="NAME.KEY=VALUE",
              help="a parameter value for one thing (TOML value), e.g. imagefolder.root=/data; repeatable")
@click.option("--timeout-s", type=float, default=300.0, show_default=True,
              help="time limit of one thing's contract (its worker process is killed past it)")
@click.option("--in-process", is_flag=True, help="run the contracts in this process (no crash isolation; debugging)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.pass_context
def check_plugin(ctx: click.Context, target: str, model, dataset, params, timeout_s: float, in_process: bool,
                 as_json: bool) -> None:
    """Run the conformance check on TARGET: a distribution, plugin, module or .py file.

    Prints pass / fail / skip for each clause of each registered thing's contract; exit
    status 1 when any clause fails, 2 when TARGET names nothing.
    """
    from harness.devkit.conformance import Options, TargetError, check_plugin
    from harness.devkit.conformance.contract import parse_params

    try:
        options = Options(params=parse_params(params))
    except ValueError as exc:
        _fail(str(exc))
    if model:
        options.model = model
    if dataset:
        options.dataset = dataset
    shown: list[str] = []

    def echo(result) -> None:
        if as_json:
            return
        if not shown or shown[-1] != result.subject:
            shown.append(result.subject)
            click.echo(result.subject)
        click.echo(result.line())

    try:
        report = check_plugin(target, plugins_dir=ctx.obj["plugins_dir"], options=options, timeout_s=timeout_s,
                              isolate=not in_process, echo=echo)
    except TargetError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1))
    else:
        click.echo(f"{report.target}: {report.summary()}")
    sys.exit(0 if report.ok else 1)


def _readonly(fn, *args, **kwargs):
    """Call a query; a missing database or a bad name or value is a usage error (exit 2)."""
    from harness.query.refs import QueryError

    try:
        return fn(*args, **kwargs)
    except (FileNotFoundError, QueryError) as exc:
        _fail(str(exc))
    except KeyError as exc:
        _fail(exc.args[0] if exc.args else str(exc))


@cli.command()
@DB_OPTION
@click.option("--run", "run_id", type=int, default=None, help="run id [default: the latest run]")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "table"]), default="table", show_default=True)
def results(db: str, run_id: int | None, fmt: str) -> None:
    """One record per measurement of a run."""
    from harness.query.leaderboard import render
    from harness.query.leaderboard import results as query

    rows = _readonly(query, db, run_id)
    click.echo(render(rows, fmt))


MACHINE_OPTION = click.option(
    "--machine", default=None, help="a machine-hash prefix, or 'all' [default: the machine of the latest run]; "
    "latency is only ranked within one machine")


@cli.command()
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
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def leaderboard(db: str, model, dataset, backend, method, machine, sort, pareto, pareto_by, columns,
                fmt: str) -> None:
    """The wide leaderboard: the latest result of every cell on one machine.

    Rows that failed a gate (the flags column says which) are shown but never ranked, and never
    on a Pareto frontier."""
    from harness.query.leaderboard import leaderboard as query
    from harness.query.leaderboard import render, select_columns

    if pareto and sort:
        _fail("--pareto and --sort do not combine: a frontier is ordered by its first objective")
    frame = _readonly(query, db, model=model, dataset=dataset, backend=backend, method=method, sort=sort,
                      machine=machine)
    if pareto:
        from harness.query.leaderboard import frontier_of

        front = _readonly(frontier_of, db, frame, pareto, pareto_by)
        click.echo(front.summary(), err=True)
        frame = front.rows
        if columns is None and fmt == "table":
            columns = ",".join(o.column for o in front.objectives)
    if columns is None and fmt != "table":
        columns = "all"
    click.echo(render(_readonly(select_columns, frame, columns), fmt))


@cli.command()
@DB_OPTION
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def runs(db: str, fmt: str) -> None:
    """The runs in the database, with their cell counts."""
    from harness.query.leaderboard import render
    from harness.query.leaderboard import runs as query

    click.echo(render(_readonly(query, db), fmt))


@cli.command()
@click.argument("base")
@click.argument("new")
@DB_OPTION
@click.option("--threshold", type=float, default=0.05, show_default=True,
              help="smallest change that counts (0.05: 5%; absolute points for fractions such as top1)")
@click.option("--alpha", type=float, default=0.01, show_default=True,
              help="significance level of the Mann-Whitney U tests, after Benjamini-Hochberg adjustment")
@click.option("--history", type=int, default=10, show_default=True,
              help="earlier runs (same machine) to learn each cell's noise floor from; 0: none")
@click.option("--sigmas", type=float, default=3.0, show_default=True,
              help="noise floor: this many standard deviations of a cell's run-to-run change")
@click.option("--metric", "metrics", multiple=True, help="compare only this metric (repeatable)")
@click.option("--force", is_flag=True, help="compare runs of different machines anyway")
@click.option("--all", "show_all", is_flag=True, help="list every row, not only the changes")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def compare(base: str, new: str, db: str, threshold: float, alpha: float, history: int, sigmas: float,
            metrics: tuple[str, ...], force: bool, show_all: bool, fmt: str) -> None:
    """Compare run NEW against run BASE: every cell and metric, with a significance test.

    BASE and NEW are run ids, 'latest', 'previous' (the run before the other one, of the same
    suite file and tag) or a tag (its newest run; as BASE, its newest run before NEW). Exit status 1
    when a significant regression beyond the threshold is found, so a CI job can fail on it.
    """
    from harness.query.compare import compare_runs
    from harness.query.leaderboard import render

    result = _readonly(compare_runs, db, base, new, threshold=threshold, alpha=alpha, force=force,
                       metrics=list(metrics) or None, history=history, sigmas=sigmas)
    listing = result.listing(show_all)
    if len(listing) or fmt != "table":
        click.echo(render(listing, fmt))
    click.echo(result.summary(), err=True)
    sys.exit(result.exit_code)


@cli.command()
@DB_OPTION
@click.option("--metric", required=True, help="the metric, e.g. p50_ms or top1")
@click.option("--model", default=None)
@click.option("--dataset", default=None)
@click.option("--method", default=None)
@click.option("--backend", default=None)
@click.option("--batch-size", type=int, default=None, help="one batch size of a batched metric")
@click.option("--tag", default=None, help="only runs with this tag")
@MACHINE_OPTION
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def history(db: str, metric: str, model, dataset, method, backend, batch_size, tag, machine, fmt: str) -> None:
    """A metric over runs, oldest first: one row per run and matching cell."""
    from harness.query.history import history as query
    from harness.query.leaderboard import render

    frame = _readonly(query, db, metric, model=model, dataset=dataset, method=method, backend=backend,
                      machine=machine, tag=tag, batch_size=batch_size)
    if frame.empty:
        click.echo("no results match", err=True)
        sys.exit(0)
    click.echo(render(frame, fmt))


@cli.command()
@click.argument("query")
@DB_OPTION
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def sql(query: str, db: str, fmt: str) -> None:
    """Run one read-only SQL statement (SELECT ...) on the leaderboard; writes are refused."""
    from harness.query.leaderboard import render
    from harness.query.sql import run_sql

    click.echo(render(_readonly(run_sql, db, query), fmt))


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="the merged database (created or extended)")
def merge(sources: tuple[str, ...], output: str) -> None:
    """Merge leaderboards of several machines into OUTPUT, without duplicates (runs matched by content)."""
    from harness.store.merge import merge as do_merge

    try:
        report = do_merge(list(sources), output)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    click.echo(f"{output}: {report.runs_added} runs added, {report.runs_matched} already there; "
               f"{report.cells_added} cells added, {report.cells_skipped} already there; "
               f"{report.measurements_added} measurements added", err=True)


@cli.command()
@DB_OPTION
@click.option("-o", "--output", default="results/report.html", show_default=True, type=click.Path())
@MACHINE_OPTION
def report(db: str, output: str, machine: str | None) -> None:
    """Write one self-contained HTML report: leaderboard, Pareto plots, history charts."""
    from harness.report.html import write_report

    path = _readonly(write_report, db, output, machine=machine)
    click.echo(f"wrote {path}", err=True)


@cli.command()
@DB_OPTION
@click.option("--port", type=int, default=8001, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind (the default keeps it on this machine)")
def serve(db: str, port: int, host: str) -> None:
    """Browse the leaderboard in datasette, read-only, with canned queries (needs the [serve] extra)."""
    from harness.report.serve import serve as run_server

    code = _readonly(run_server, db, port=port, host=host)
    sys.exit(code)


@cli.command()
@DB_OPTION
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="write the report to this file [default: standard output]")
@click.option("--findings", "findings", multiple=True, type=click.Path(dir_okay=False),
              help="a findings file (repeatable) [default: NAME.findings.toml beside each run's suite file]")
def studies(db: str, output: str | None, findings: tuple[str, ...]) -> None:
    """Tables (mean ± std over seeds) and known findings of the literature, each stated as reproduced
    or not by the data in the database, as Markdown."""
    from pathlib import Path

    from harness.report.studies import report

    text = _readonly(report, db, list(findings) or None)
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
