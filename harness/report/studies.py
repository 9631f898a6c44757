"""Studies: tables (mean ± std over seeds) and known findings of the compression literature, each
checked against a leaderboard and stated as reproduced or not, whichever way the data goes.

``harness studies --db DB -o docs/studies.md`` renders the report. Everything is computed from
the latest result of every cell in the database (the ``latest_results`` view); nothing about a
verdict is written in advance. A finding with no data says so ("not measured").

Comparisons across seeds: a method is *higher* than another when its mean exceeds the other's by
more than twice the standard error of the difference (``sqrt(s1^2/n1 + s2^2/n2)``), *lower* in the
mirror case, and *level* otherwise. With one seed there is no error bar and any difference counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.store.db import open_readonly

#: Sparsity at and above which "high sparsity" findings are judged.
HIGH_SPARSITY = 0.9
#: MLPerf's quality gate: a compressed model keeps at least 99% of the dense top-1.
QUALITY_GATE = 0.99
#: A latency gain is real when the mean speedup exceeds this and its 2-standard-error interval excludes 1.
REAL_GAIN = 1.05
#: Methods that zero individual weights (no structure a dense kernel can exploit).
UNSTRUCTURED = ("random", "global-magnitude", "layer-magnitude", "wanda", "gradient", "lottery-ticket")
#: Methods that remove whole channels, so dense kernels shrink.
STRUCTURED = ("channel-l1",)
#: The parameters a study sweeps; a table has one column per value.
SWEEPS = ("sparsity", "bits")


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
    """Every latest measurement, one row each, with ``label``, ``sparsity``, ``bits`` and ``batch_size``."""
    import pandas as pd

    conn = open_readonly(db)
    try:
        frame = pd.read_sql_query(
            "SELECT model, dataset, method, method_params, seed, backend, backend_params, suite, metric, value, "
            "params AS mparams FROM latest_results", conn)
    finally:
        conn.close()
    params = frame["method_params"].map(json.loads)
    frame["label"] = [_label(m, p) for m, p in zip(frame["method"], params)]
    for key in SWEEPS:
        frame[key] = [_sweep_value(p, key) for p in params]
    frame["batch_size"] = frame["mparams"].map(lambda s: json.loads(s).get("batch_size"))
    frame["backend"] = frame["backend"].fillna("")
    return frame


def runs(db: str | Path) -> list[dict]:
    """The runs behind the report: suite, seeds, cells, wall time, machine."""
    conn = open_readonly(db)
    try:
        rows = conn.execute("""
            SELECT r.id, r.suite_name, r.suite_sha256, r.seeds, r.started_at, r.finished_at, r.status, r.machine,
                   r.git_revision, sum(c.status = 'ok') AS ok, sum(c.status = 'skipped') AS skipped,
                   sum(c.status = 'failed') AS failed
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
                    "machine": f"{machine.get('cpu_model', '?')}, {machine.get('usable_cores', '?')} cores"})
    return out


@dataclass(frozen=True)
class Stat:
    """A metric over seeds: mean, sample standard deviation (0 with one seed) and count."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat | None:
        """The statistics of ``values`` (``None`` when there are none)."""
        vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if not vals:
            return None
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        return cls(mean, std, len(vals))

    @property
    def se(self) -> float:
        """Standard error of the mean."""
        return self.std / math.sqrt(self.n)

    def text(self, digits: int = 3) -> str:
        """``0.912 ± 0.013`` (the mean alone for one seed)."""
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def compare(a: Stat, b: Stat) -> str:
    """``higher``, ``lower`` or ``level``: is ``a``'s mean beyond twice the standard error of the difference?"""
    diff = a.mean - b.mean
    margin = 2 * math.sqrt(a.se ** 2 + b.se ** 2)
    if diff > margin:
        return "higher"
    if diff < -margin:
        return "lower"
    return "level"


def stat(frame: Any, metric: str, **where: Any) -> Stat | None:
    """The statistics over seeds of ``metric`` in the rows matching ``where`` (one value per seed)."""
    rows = frame[frame["metric"] == metric]
    for key, value in where.items():
        rows = rows[rows[key].isna()] if value is None else rows[rows[key] == value]
    return Stat.of(rows["value"])


# --------------------------------------------------------------------------- findings


@dataclass
class Finding:
    """A known result, and whether this database reproduces it.

    ``checks`` holds ``(holds, evidence)`` pairs, one per comparison the data allows.
    """

    key: str
    claim: str
    source: str
    rule: str
    checks: list[tuple[bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``reproduced`` (every comparison holds), ``not reproduced`` (none does), ``partly reproduced
        (k of n)``, or ``not measured``."""
        if not self.checks:
            return "not measured"
        held = sum(1 for ok, _ in self.checks if ok)
        if held == len(self.checks):
            return "reproduced"
        if held == 0:
            return "not reproduced"
        return f"partly reproduced ({held} of {len(self.checks)} comparisons)"


def _groups(frame: Any, metric: str = "top1") -> Iterable[tuple[tuple, Any]]:
    """``((model, dataset, backend), rows)`` for every group that measured ``metric``."""
    rows = frame[frame["metric"] == metric]
    yield from rows.groupby(["model", "dataset", "backend"], sort=True)


def _pair_finding(frame: Any, finding: Finding, a: str, b: str, key: str, values: Callable[[set], list],
                  want: str = "higher", metric: str = "top1") -> Finding:
    """Compare method ``a`` with ``b`` on ``metric`` at each swept ``key`` value that ``values`` selects."""
    for (model, _dataset, backend), rows in _groups(frame, metric):
        common = set(rows[rows["method"] == a][key].dropna()) & set(rows[rows["method"] == b][key].dropna())
        for v in values(common):
            sa = stat(rows, metric, method=a, **{key: v})
            sb = stat(rows, metric, method=b, **{key: v})
            if sa is None or sb is None:
                continue
            outcome = compare(sa, sb)
            finding.checks.append((outcome == want, f"{model} on {backend}, {key} {v:g}: {a} {sa.text()} vs {b} "
                                                    f"{sb.text()} ({metric}): {a} is {outcome}"))
    return finding


def global_beats_random(frame: Any) -> Finding:
    """Global magnitude pruning keeps more accuracy than random pruning at high sparsity."""
    f = Finding("magnitude-vs-random", "Global magnitude pruning beats random pruning at high sparsity.",
                "Blalock et al. 2020 (ShrinkBench); Han et al. 2015; Liu et al. 2022",
                f"top-1 of global-magnitude higher than random (2-SE rule) at every sparsity >= {HIGH_SPARSITY}")
    return _pair_finding(frame, f, "global-magnitude", "random", "sparsity",
                         lambda vs: sorted(v for v in vs if v >= HIGH_SPARSITY))


def global_vs_layerwise(frame: Any) -> Finding:
    """Global magnitude pruning keeps more accuracy than uniform layer-wise magnitude pruning at high sparsity."""
    f = Finding("global-vs-layerwise",
                "Global magnitude pruning beats uniform layer-wise magnitude pruning at high sparsity.",
                "Blalock et al. 2020 (ShrinkBench); Lee et al. 2021 (LAMP); Gale et al. 2019",
                f"top-1 of global-magnitude higher than layer-magnitude (2-SE rule) at every sparsity >= "
                f"{HIGH_SPARSITY}")
    return _pair_finding(frame, f, "global-magnitude", "layer-magnitude", "sparsity",
                         lambda vs: sorted(v for v in vs if v >= HIGH_SPARSITY))


def eight_bit_keeps_accuracy(frame: Any) -> Finding:
    """8-bit weights (and int8 activations) keep the fp32 model's accuracy."""
    f = Finding("8bit-keeps-accuracy", "8-bit quantization keeps fp32 accuracy.",
                "Jacob et al. 2018; Krishnamoorthi 2018; Wu et al. 2020",
                f"mean top1_retained >= {QUALITY_GATE} (MLPerf's 99% quality gate) for kbit at 8 bits, "
                "int8-static and int8-dynamic")
    for (model, _dataset, backend), rows in _groups(frame, "top1_retained"):
        eight = rows[((rows["method"] == "kbit") & (rows["bits"] == 8)) |
                     rows["method"].isin(["int8-static", "int8-dynamic"])]
        for label, part in eight.groupby("label", sort=True):
            s = Stat.of(part["value"])
            if s is None:
                continue
            shown = f"{label} bits=8" if label == "kbit" else label
            f.checks.append((s.mean >= QUALITY_GATE,
                             f"{model} on {backend}: {shown} keeps {s.text(4)} of dense top-1"))
    return f


def pareto_front(points: dict[Any, tuple[float, float]]) -> list:
    """Keys of the points ``(size, accuracy)`` that no other point beats: no smaller-or-equal point is at
    least as accurate with one of the two strictly better. Means, no error bars."""
    front = []
    for k, (size, acc) in points.items():
        dominated = any(s2 <= size and a2 >= acc and (s2 < size or a2 > acc)
                        for k2, (s2, a2) in points.items() if k2 != k)
        if not dominated:
            front.append(k)
    return sorted(front, key=lambda k: points[k][0])


def four_vs_eight_bit(frame: Any) -> Finding:
    """4-bit weights sit on the size-accuracy Pareto front where 8-bit weights cost twice the bytes for
    no accuracy."""
    f = Finding("4bit-pareto", "4-bit weights are on the size-accuracy Pareto front; 8-bit weights are not "
                "worth their extra bytes.", "Dettmers & Zettlemoyer 2023, The case for 4-bit precision",
                "among kbit at 2-8 bits (packed_bytes against mean top-1), 4 bits is on the Pareto front and its "
                "top-1 is not lower than 8 bits' (2-SE rule)")
    size = frame[(frame["metric"] == "packed_bytes") & (frame["method"] == "kbit")]
    for (model, dataset, backend), rows in _groups(frame):
        kb = rows[rows["method"] == "kbit"]
        points, acc = {}, {}
        for bits in sorted(set(kb["bits"].dropna())):
            a = stat(kb, "top1", bits=bits)
            b = Stat.of(size[(size["model"] == model) & (size["dataset"] == dataset) & (size["bits"] == bits)]["value"])
            if a is not None and b is not None:
                points[int(bits)] = (b.mean, a.mean)
                acc[int(bits)] = a
        if 4 not in points or 8 not in points:
            continue
        front = pareto_front(points)
        outcome = compare(acc[4], acc[8])
        ok = 4 in front and outcome != "lower"
        f.checks.append((ok, f"{model} on {backend}: front {', '.join(f'{b} bits' for b in front)}; 4 bits "
                             f"{acc[4].text()} at {points[4][0]:.0f} B vs 8 bits {acc[8].text()} at "
                             f"{points[8][0]:.0f} B: 4 bits is {outcome}"))
    return f


def splitquant_beats_kbit(frame: Any) -> Finding:
    """SplitQuant keeps more accuracy than plain per-channel k-bit quantization at 2 and 3 bits."""
    f = Finding("splitquant-low-bit", "SplitQuant beats plain k-bit quantization at 2 and 3 bits.",
                "Song & Lin 2025, SplitQuant",
                "top-1 of splitquant higher than kbit (2-SE rule) at 2 and at 3 bits")
    _pair_finding(frame, f, "splitquant", "kbit", "bits", lambda vs: sorted(v for v in vs if v in (2, 3)))
    # SplitQuant stores a 2-bit cluster index beside each k-bit code: at equal stored bits it meets k+2-bit kbit.
    for (model, _dataset, backend), rows in _groups(frame):
        for bits in (2, 3):
            sa = stat(rows, "top1", method="splitquant", bits=bits)
            sb = stat(rows, "top1", method="kbit", bits=bits + 2)
            if sa is not None and sb is not None:
                f.notes.append(f"{model} on {backend}, equal stored bits ({bits + 2} per weight): splitquant "
                               f"{bits} bits {sa.text()} vs kbit {bits + 2} bits {sb.text()}: splitquant is "
                               f"{compare(sa, sb)}")
    return f


def structured_latency(frame: Any, backend: str = "onnxruntime-cpu") -> Finding:
    """Structured (channel) pruning makes a dense runtime faster; unstructured pruning does not."""
    f = Finding("structured-latency", f"Structured pruning gives real latency gains on {backend}; unstructured "
                "pruning gives none.", "Blalock et al. 2020; Wen et al. 2016; Hoefler et al. 2021",
                f"at the largest batch size, every structured config has a real gain and no unstructured config "
                f"does (real gain: mean speedup over dense > {REAL_GAIN} with its 2-SE interval above 1)")
    rows = frame[(frame["metric"] == "speedup") & (frame["backend"] == backend)]
    rows = rows[rows["method"].isin(STRUCTURED + UNSTRUCTURED)]
    kinds = set()
    for (model, _dataset), part in rows.groupby(["model", "dataset"], sort=True):
        largest = part["batch_size"].max()
        for (bs, label, sparsity), cfg in part.groupby(["batch_size", "label", "sparsity"], sort=True):
            s = Stat.of(cfg["value"])
            if s is None:
                continue
            gain = s.mean > REAL_GAIN and s.mean - 2 * s.se > 1
            structured = cfg["method"].iloc[0] in STRUCTURED
            kind = "structured" if structured else "unstructured"
            text = (f"{model}, batch {int(bs)}: {label} ({kind}) at sparsity {sparsity:g}: speedup {s.text(2)} "
                    f"({'a' if gain else 'no'} real gain)")
            if bs == largest:
                kinds.add(kind)
                f.checks.append((gain == structured, text))
            else:
                f.notes.append(text)
    if kinds != {"structured", "unstructured"}:  # the finding contrasts the two: one side alone says nothing
        f.notes = ([f"only {', '.join(sorted(kinds)) or 'no'} pruning was timed on {backend}"]
                   + [text for _, text in f.checks] + f.notes)
        f.checks = []
    return f


FINDINGS: tuple[Callable[[Any], Finding], ...] = (
    global_beats_random, global_vs_layerwise, eight_bit_keeps_accuracy, four_vs_eight_bit, splitquant_beats_kbit,
    structured_latency,
)


def findings(frame: Any) -> list[Finding]:
    """Every known finding, judged on ``frame`` (from :func:`load`)."""
    return [check(frame) for check in FINDINGS]


# --------------------------------------------------------------------------- tables


def sweep_table(frame: Any, metric: str, key: str) -> Any:
    """Rows (model, backend, method); one column per value of ``key``; cells ``mean ± std``. ``dense`` is its
    own column. Returns a DataFrame (empty when no method sweeps ``key``)."""
    import pandas as pd

    rows = frame[frame["metric"] == metric]
    swept = rows[rows[key].notna()]
    if swept.empty:
        return pd.DataFrame()
    values = sorted(set(swept[key]))
    out = []
    for (model, backend, label), part in swept.groupby(["model", "backend", "label"], sort=True):
        dense = stat(rows[(rows["model"] == model) & (rows["backend"] == backend)], metric, method="dense")
        row = {"model": model, "backend": backend or "-", "method": label, "dense": dense.text() if dense else ""}
        for v in values:
            s = Stat.of(part[part[key] == v]["value"])
            row[f"{v:g}"] = s.text() if s else ""
        out.append(row)
    return pd.DataFrame(out)


def latency_table(frame: Any) -> Any:
    """Speedup over dense (mean ± std over seeds) per batch size, with the theoretical speedup, for the
    pruning methods timed on a backend."""
    import pandas as pd

    sp = frame[(frame["metric"] == "speedup") & (frame["method"] != "dense")]
    theory = frame[frame["metric"] == "theoretical_speedup"]
    out = []
    for (model, backend, label, sparsity), part in sp.groupby(["model", "backend", "label", "sparsity"], sort=True):
        row = {"model": model, "backend": backend, "method": label, "sparsity": f"{sparsity:g}"}
        for bs in sorted(set(part["batch_size"].dropna())):
            s = Stat.of(part[part["batch_size"] == bs]["value"])
            row[f"speedup b{int(bs)}"] = s.text(2) if s else ""
        t = Stat.of(theory[(theory["model"] == model) & (theory["label"] == label) &
                           (theory["sparsity"] == sparsity)]["value"])
        row["theoretical"] = t.text(2) if t else ""
        out.append(row)
    return pd.DataFrame(out)


def size_table(frame: Any, methods: Iterable[str],
               metrics: tuple[tuple[str, int], ...] = (("bits_per_weight", 2), ("packed_bytes", 0), ("top1", 3)),
               ) -> Any:
    """``metrics`` (name, digits) of the given methods, one row per configuration (mean ± std over seeds)."""
    import pandas as pd

    methods = set(methods)
    rows = frame[frame["method"].isin(methods)]
    out = []
    keys = ["model", "label", "bits"]
    for (model, label, bits), part in rows.groupby(keys, sort=True, dropna=False):
        row = {"model": model, "method": label, "bits": "" if bits is None or bits != bits else f"{bits:g}"}
        for metric, digits in metrics:
            s = Stat.of(part[part["metric"] == metric]["value"])
            row[metric] = s.text(digits) if s else ""
        out.append(row)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- report


def _md(table: Any) -> str:
    if table is None or table.empty:
        return "_no data_\n"
    return table.to_markdown(index=False) + "\n"


def report(db: str | Path) -> str:
    """The studies report as Markdown: runs, findings with verdicts, then the tables."""
    import pandas as pd

    frame = load(db)
    results = findings(frame)
    lines = ["# Studies: known findings, reproduced or not", "",
             f"Generated by `harness studies` from `{Path(db).name}` (the latest result of every cell). Values "
             "are mean ± sample standard deviation over seeds; every verdict is computed from these data by "
             "`harness/report/studies.py`. Two means differ when their gap exceeds twice the standard error of the "
             "difference.", "", "## Runs", ""]
    run_rows = [{"run": r["run"], "suite": r["suite"], "seeds": r["seeds"], "status": r["status"], "ok": r["ok"],
                 "skipped": r["skipped"], "failed": r["failed"],
                 "wall time": "" if r["wall_s"] is None else f"{r['wall_s'] / 60:.1f} min",
                 "git": r["git"], "machine": r["machine"]} for r in runs(db)]
    lines.append(_md(pd.DataFrame(run_rows)))
    lines += ["## Findings", "", "| finding | verdict | source |", "|---|---|---|"]
    for f in results:
        lines.append(f"| {f.claim} | **{f.verdict}** | {f.source} |")
    lines.append("")
    for f in results:
        lines += [f"### {f.claim}", "", f"Verdict: **{f.verdict}**. Rule: {f.rule}.", ""]
        lines += [f"- {'holds' if ok else 'does not hold'}: {text}" for ok, text in f.checks] or ["- no data"]
        if f.notes:
            lines += ["", "Also measured (not part of the verdict):", ""] + [f"- {n}" for n in f.notes]
        lines.append("")
    lines += ["## Pruning: top-1 by sparsity", "", _md(sweep_table(frame, "top1", "sparsity")),
              "## Pruning: weight sparsity reached", "", _md(sweep_table(frame, "weight_sparsity", "sparsity")),
              "## Pruning: fixed patterns", "",
              _md(size_table(frame, ["n-m"], (("weight_sparsity", 3), ("top1", 3))).drop(columns="bits",
                                                                                            errors="ignore")),
              "## Pruning: measured speedup over dense and theoretical speedup", "", _md(latency_table(frame)),
              "## Quantization: top-1 by bit width", "", _md(sweep_table(frame, "top1", "bits")),
              "## Quantization: bits, packed size and top-1", "",
              _md(size_table(frame, ["dense", "kbit", "splitquant", "mixed-precision", "int8-static",
                                     "int8-dynamic"]))]
    return "\n".join(lines).rstrip() + "\n"

