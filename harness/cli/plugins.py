"""``harness plugins``, ``new-plugin`` and ``check-plugin``: list, scaffold and check plugins."""

from __future__ import annotations

import json
import sys

import click

from harness.cli.options import load_host


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List plugins: their kinds, what they registered, version and origin."""
    infos = [p.as_dict() for p in load_host(ctx).registry.plugins.values()]
    if as_json:
        click.echo(json.dumps(infos, indent=1))
        return
    for p in infos:
        origin = p["source"] + (f" {p['distribution']} {p['version']}" if p["distribution"] else "")
        click.echo(f"{p['name']}  [{origin}]  {p['location'] or ''}")
        for kind, names in p["registered"].items():
            click.echo(f"    {kind}: {', '.join(names)}")


@click.command("new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(["method", "model", "dataset", "backend", "verifier"]), required=True,
              help="what the plugin registers")
@click.option("--dir", "parent", type=click.Path(file_okay=False), default=".", show_default=True,
              help="where to create the NAME folder")
@click.pass_context
def new_plugin(ctx: click.Context, name: str, kind: str, parent: str) -> None:
    """Write a complete, installable plugin package NAME/ with a working example of KIND."""
    from harness.devkit.scaffold import new_plugin as scaffold

    click.echo(scaffold(name, kind, parent, plugins_dir=ctx.obj["plugins_dir"]).summary())


@click.command("check-plugin")
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
    from harness.devkit.conformance import Options
    from harness.devkit.conformance import check_plugin as check
    from harness.devkit.conformance.contract import parse_params

    options = Options(params=parse_params(params))
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

    report = check(target, plugins_dir=ctx.obj["plugins_dir"], options=options, timeout_s=timeout_s,
                   isolate=not in_process, echo=echo)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1))
    else:
        click.echo(f"{report.target}: {report.summary()}")
    sys.exit(0 if report.ok else 1)


COMMANDS = [plugins, new_plugin, check_plugin]
