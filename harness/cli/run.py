"""``harness run`` and ``harness setup``: measure a suite file, prepare a backend."""

from __future__ import annotations

import sys

import click

from harness.cli.options import DB_OPTION, cache_option, load_host
from harness.plan.size import CELL_LIMIT


@click.command()
@click.argument("suite", type=click.Path())
@DB_OPTION
@cache_option("artifact and weights cache [default: ~/.cache/harness]")
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
@click.option("--yes", "-y", "yes", is_flag=True,
              help=f"run a plan larger than {CELL_LIMIT:,} cells (refused otherwise: see docs/suite-files.md)")
@click.pass_context
def run(ctx: click.Context, suite: str, db: str, cache_dir: str | None, resume: bool, retry_failed: bool,
        quiet: bool, show: bool, tag: str | None, executor: str, address: str | None, ray_wait: float,
        yes: bool) -> None:
    """Run (or resume) the suite file SUITE."""
    from harness.query.refs import QueryError, check_tag
    from harness.run.driver import run_suite

    try:
        check_tag(tag)
    except QueryError as exc:  # name the option: the same check also reads tags in run references
        raise QueryError(f"--tag: {exc}", key="--tag") from None
    host = load_host(ctx)

    def announce(plan):
        if not quiet:
            skipped = sum(1 for c in plan.cells if c.skip_reason)
            click.echo(f"suite {plan.name}: {len(plan.cells):,} cells ({skipped:,} skipped by plan), db {db}",
                       err=True)

    try:
        summary = run_suite(suite, db=db, cache_dir=cache_dir, resume=resume, retry_failed=retry_failed,
                            progress=not quiet, host=host, on_plan=announce, tag=tag, executor=executor,
                            ray_address=address, ray_wait_s=ray_wait, max_cells=None if yes else CELL_LIMIT)
    except KeyboardInterrupt as exc:  # every finished cell is stored: say how to go on
        from harness.run.driver import Terminated

        click.echo(f"{'terminated' if isinstance(exc, Terminated) else 'interrupted'}: the run is marked "
                   f"interrupted; run 'harness run' again to resume", err=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    if summary.took_over:
        click.echo(summary.took_over, err=True)
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


@click.command()
@click.argument("backend")
@cache_option("where to install [default: ~/.cache/harness]")
@click.pass_context
def setup(ctx: click.Context, backend: str, cache_dir: str | None) -> None:
    """Prepare what BACKEND needs (e.g. 'wasm': the pinned onnxruntime-web; 'arm': the emulated root)."""
    from pathlib import Path

    from harness.core.errors import StepFailed
    from harness.core.paths import cache_dir as default_cache

    spec = load_host(ctx).registry.backend(backend)
    if spec.setup is None:
        click.echo(f"backend {backend} needs no setup")
        return
    try:
        message = spec.setup(Path(cache_dir) if cache_dir else default_cache())
    except Exception as exc:  # noqa: BLE001 - the backend's own reason is the message
        raise StepFailed(f"setup of {backend} failed: {exc}") from exc
    click.echo(message)


COMMANDS = [run, setup]
