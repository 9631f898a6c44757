"""Studies: tables (mean ± std over seeds) and known findings of the compression literature, each
checked against a leaderboard and stated as reproduced or not, whichever way the data goes.

``harness studies --db DB -o docs/studies.md`` renders the report. Everything is computed from
the latest result of every cell in the database (the ``latest_results`` view); nothing about a
verdict is written in advance. A finding with no data says so ("not measured").

The findings and tables are data: a findings file beside a study's suite file
(``suites/pruning-study.findings.toml`` beside ``suites/pruning-study.toml``) declares them with the
methods and metrics they name, and :mod:`harness.report.findings` and :mod:`harness.report.tables`
hold the generic rules. By default the report reads the findings file beside the suite file of each
run in the database.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.query.refs import QueryError
from harness.report.findings import Finding, check_spec, judge
from harness.report.tables import check_table, table
from harness.store.check import open_readonly

#: The parameters a study sweeps; a table has one column per value.
SWEEPS = ("sparsity", "bits")
#: A study's findings file: ``NAME.findings.toml`` beside its suite file ``NAME.toml``.
SUFFIX = ".findings.toml"


# --------------------------------------------------------------------------- data


def _sweep_value(params: dict, key: str) -> Any:
    """``params[key]``, or the first pipeline step's value of it."""
    if key in params:
        return params[key]
    for step in params.get("steps", []):
        if key in step.get("params", {}):
            return step["params"][key]
    return None


def _label(method: str, params: dict) -> str:
    """A method with the parameters a study does not sweep: ``block(block_cols=1, block_rows=4)``."""
    if "steps" in params:
        return " + ".join(_label(s["name"], s["params"]) for s in params["steps"])
    rest = {k: v for k, v in sorted(params.items()) if k not in SWEEPS}
    return f"{method}({', '.join(f'{k}={v}' for k, v in rest.items())})" if rest else method


def load(db: str | Path) -> Any:
    """Every latest measurement, one row each, with ``label``, ``sparsity``, ``bits``, ``batch_size`` and its
    stored ``info`` (JSON text), and the capacity density rows derived from them (:func:`with_density`).
    A model measured at several parameter values (a family of widths) is named with them:
    ``mlp(hidden=64)``."""
    import pandas as pd

    from harness.query.columns import label as model_label

    conn = open_readonly(db)
    try:
        frame = pd.read_sql_query(
            "SELECT model, model_params, dataset, method, method_params, seed, backend, backend_params, suite, "
            "metric, value, params AS mparams, info FROM latest_results", conn)
    finally:
        conn.close()
    params = frame["method_params"].map(json.loads)
    frame["label"] = [_label(m, p) for m, p in zip(frame["method"], params)]
    for key in SWEEPS:
        frame[key] = [_sweep_value(p, key) for p in params]
    frame["batch_size"] = frame["mparams"].map(lambda s: json.loads(s).get("batch_size"))
    frame["backend"] = frame["backend"].fillna("")
    frame["architecture"] = frame["model"]
    several = frame.groupby("model")["model_params"].nunique()
    family = frame["model"].isin(several[several > 1].index)
    frame.loc[family, "model"] = [model_label(m, p) for m, p in zip(frame.loc[family, "model"],
                                                                      frame.loc[family, "model_params"])]
    return with_density(frame)


def with_density(frame: Any) -> Any:
    """``frame`` with ``capacity_density`` and ``effective_params`` rows (suite ``density``) for every
    accuracy row of an architecture whose dense family was measured (:mod:`harness.query.density`)."""
    import pandas as pd

    from harness.query import density

    metric = density.quality_metric(set(frame["metric"]))
    if metric is None:
        return frame
    keys = ["architecture", "model_params", "dataset", "method", "method_params", "seed"]
    quality = frame[frame["metric"] == metric]
    nonzero = frame[frame["metric"] == "nonzero_params"][keys + ["value"]].drop_duplicates(keys)
    both = quality.merge(nonzero.rename(columns={"value": "nonzero"}), on=keys)
    if both.empty:
        return frame
    both = both.assign(group=list(zip(both["architecture"], both["dataset"], both["backend"])),
                       dense=both["method"] == "dense")
    fits = density.family_fits(both)
    rows = []
    for r in both.itertuples(index=False):
        if r.group not in fits:
            continue
        m, f = fits[r.group]
        got = density.density_of(f, density.error_of(m, r.value), r.nonzero)
        for name in ("effective_params", "capacity_density"):
            if got[name] is not None:
                info = json.dumps({"lo": got["capacity_density_lo"], "hi": got["capacity_density_hi"]})
                rows.append({**r._asdict(), "suite": "density", "metric": name, "value": got[name], "info": info,
                             "mparams": "{}", "batch_size": None})
    if not rows:
        return frame
    extra = pd.DataFrame(rows).drop(columns=["group", "dense", "nonzero"])
    return pd.concat([frame, extra], ignore_index=True)


def runs(db: str | Path) -> list[dict]:
    """The runs behind the report: suite, seeds, cells, wall time, machine, suite file."""
    conn = open_readonly(db)
    try:
        rows = conn.execute("""
            SELECT r.id, r.suite_name, r.suite_path, r.suite_sha256, r.seeds, r.started_at, r.finished_at,
                   r.status, r.machine, r.git_revision, sum(c.status = 'ok') AS ok,
                   sum(c.status = 'skipped') AS skipped, sum(c.status = 'failed') AS failed
            FROM runs r LEFT JOIN cells c ON c.run_id = r.id GROUP BY r.id ORDER BY r.id""").fetchall()
    finally:
        conn.close()
    out = []
    for r in rows:
        machine = json.loads(r["machine"] or "{}")
        wall = None
        if r["started_at"] and r["finished_at"]:
            wall = (datetime.fromisoformat(r["finished_at"]) - datetime.fromisoformat(r["started_at"])).total_seconds()
        out.append({"run": r["id"], "suite": r["suite_name"], "seeds": r["seeds"], "status": r["status"],
                    "ok": r["ok"] or 0, "skipped": r["skipped"] or 0, "failed": r["failed"] or 0,
                    "wall_s": wall, "started": r["started_at"], "git": (r["git_revision"] or "")[:12],
                    "machine": f"{machine.get('cpu_model', '?')}, {machine.get('usable_cores', '?')} cores",
                    "suite_path": r["suite_path"]})
    return out


# --------------------------------------------------------------------------- findings files


@dataclass(frozen=True)
class Study:
    """One findings file: the findings it declares and the tables the report shows for it."""

    path: Path
    findings: list[dict]
    tables: list[dict]

    @classmethod
    def read(cls, path: str | Path) -> Study:
        """Parse and check a findings file (:class:`QueryError` naming the file on any fault)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise QueryError(f"no findings file {path}", file=str(path)) from None
        except OSError as exc:
            raise QueryError(f"findings file {path}: cannot be read: {exc.strerror or exc}", file=str(path)) from None
        except UnicodeDecodeError as exc:
            raise QueryError(f"findings file {path}: not UTF-8 text (byte at offset {exc.start}): a findings file "
                             "is TOML, which is UTF-8", file=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise QueryError(f"{path}: {exc}", file=str(path)) from None
        unknown = set(data) - {"findings", "tables"}
        if unknown:
            raise QueryError(f"{path}: unknown key {sorted(unknown)[0]!r} (a findings file holds [[findings]] "
                             "and [[tables]])", file=str(path), key=sorted(unknown)[0])
        for spec in data.get("findings", []):
            check_spec(spec, str(path))
        for spec in data.get("tables", []):
            check_table(spec, str(path))
        return cls(path, data.get("findings", []), data.get("tables", []))


def beside_suites(db: str | Path) -> list[Path]:
    """The findings files beside the suite files of the database's runs (as the runs named them), sorted."""
    found = set()
    for r in runs(db):
        if r["suite_path"]:
            suite = Path(r["suite_path"])
            candidate = suite.with_name(suite.name.removesuffix(".toml") + SUFFIX)
            if candidate.is_file():
                found.add(candidate)
    return sorted(found, key=lambda p: (p.name, str(p)))


def studies(files: Iterable[str | Path]) -> list[Study]:
    """The findings files ``files``, read and checked."""
    return [Study.read(p) for p in files]


def findings(frame: Any, files: Iterable[str | Path]) -> list[Finding]:
    """Every finding the findings files ``files`` declare, judged on ``frame`` (from :func:`load`)."""
    return [judge(frame, spec) for study in studies(files) for spec in study.findings]


# --------------------------------------------------------------------------- report


def _md(frame: Any) -> str:
    if frame is None or frame.empty:
        return "_no data_\n"
    return frame.to_markdown(index=False) + "\n"


def report(db: str | Path, files: Iterable[str | Path] | None = None) -> str:
    """The studies report as Markdown: runs, findings with verdicts, then the tables. ``files``: the findings
    files (default: those beside the runs' suite files, :func:`beside_suites`)."""
    import pandas as pd

    frame = load(db)
    chosen = studies(beside_suites(db) if files is None else files)
    results = [judge(frame, spec) for study in chosen for spec in study.findings]
    rules = ", ".join(f"`{s.path.name}`" for s in chosen) or "no findings file"
    lines = ["# Studies: known findings, reproduced or not", "",
             f"Generated by `harness studies` from `{Path(db).name}` (the latest result of every cell). Values "
             "are mean ± sample standard deviation over seeds; every verdict is computed from these data by "
             f"the rules of {rules} (`harness/report/findings.py`). Two means differ when their gap exceeds "
             "twice the standard error of the difference.", "", "## Runs", ""]
    run_rows = [{"run": r["run"], "suite": r["suite"], "seeds": r["seeds"], "status": r["status"], "ok": r["ok"],
                 "skipped": r["skipped"], "failed": r["failed"],
                 "wall time": "" if r["wall_s"] is None else f"{r['wall_s'] / 60:.1f} min",
                 "git": r["git"], "machine": r["machine"]} for r in runs(db)]
    lines.append(_md(pd.DataFrame(run_rows)))
    lines += ["## Findings", ""]
    if not chosen:
        lines += ["_No findings file: none beside the runs' suite files (pass `--findings FILE`)._", ""]
    else:
        lines += ["| finding | verdict | source |", "|---|---|---|"]
        lines += [f"| {f.claim} | **{f.verdict}** | {f.source} |" for f in results]
        lines.append("")
    for f in results:
        lines += [f"### {f.claim}", "", f"Verdict: **{f.verdict}**. Rule: {f.rule}.", ""]
        lines += [f"- {'holds' if ok else 'does not hold'}: {text}" for ok, text in f.checks] or ["- no data"]
        if f.notes:
            lines += ["", "Also measured (not part of the verdict):", ""] + [f"- {n}" for n in f.notes]
        lines.append("")
    for study in chosen:
        for spec in study.tables:
            lines += [f"## {spec['heading']}", "", _md(table(frame, spec))]
    return "\n".join(lines).rstrip() + "\n"
