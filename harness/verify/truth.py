"""Peer verdicts as truth: what other tools answered on a benchmark's instances.

Two files are read:

- a VNN-COMP results folder: ``results_csv/<tool>.csv`` (or the csv files themselves), one row per
  instance, ``benchmark,onnx,vnnlib,prepare_s,result,run_s`` (:mod:`harness.verify.vnncomp2021`);
- a plain truth file: a header ``instance,truth`` (or ``onnx,vnnlib,truth``), a verdict per row
  (``holds``/``unsat`` or ``violated``/``sat``). Each row is one source, named ``file``.

**The agreement rule**: an instance has a truth when at least :data:`MIN_AGREE` tools gave the same
decided verdict and no tool gave the other one (a plain truth file's row is taken as given). An
instance where tools disagree is *disputed* and has no truth; one decided by a single tool has none
either. Instances are matched by ``<network stem>-<property stem>``; the rows 2021 did not score
(the ``test`` benchmark, ``test_nano``/``test_tiny`` networks) give no truth.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from harness.verify.vnncomp2021 import DECIDED, HOLDS, VIOLATED, instance_name, read_results_folder

#: Decided verdicts needed from distinct tools, with no dissent, for a peer verdict to be truth.
MIN_AGREE = 2
_WORDS = {"holds": HOLDS, "unsat": HOLDS, "violated": VIOLATED, "sat": VIOLATED}


@dataclass(frozen=True)
class Truth:
    """What peers say about one instance: the agreed verdict (``None`` when there is none), who agrees,
    who dissents."""

    verdict: str | None
    agree: tuple[str, ...]
    disagree: tuple[str, ...] = ()

    @property
    def disputed(self) -> bool:
        """Whether peers gave both decided verdicts."""
        return bool(self.disagree)

    def as_dict(self) -> dict:
        """JSON-able form (stored with every verdict scored against it)."""
        return {"verdict": self.verdict, "agree": list(self.agree), "disagree": list(self.disagree)}


def agreed(votes: dict[str, str], min_agree: int = MIN_AGREE) -> Truth:
    """The truth of one instance from ``{tool: verdict}`` by the agreement rule."""
    by = {v: tuple(sorted(t for t, r in votes.items() if r == v)) for v in DECIDED}
    if by[HOLDS] and by[VIOLATED]:
        major = HOLDS if len(by[HOLDS]) >= len(by[VIOLATED]) else VIOLATED
        minor = VIOLATED if major == HOLDS else HOLDS
        return Truth(None, by[major], by[minor])
    for v in DECIDED:
        if by[v]:
            return Truth(v if len(by[v]) >= min_agree or by[v] == ("file",) else None, by[v])
    return Truth(None, ())


def read_truth(path: str | Path, benchmark: str | None = None) -> dict[str, Truth]:
    """``{instance name: Truth}`` from a results folder or a plain truth file.

    ``benchmark`` keeps only a results folder's rows of that benchmark (category); ``None`` keeps all.
    Raises :class:`ValueError` naming the file on a malformed file.
    """
    path = Path(path)
    if path.is_dir():
        votes: dict[str, dict[str, str]] = defaultdict(dict)
        for tool, rows in read_results_folder(path).items():
            for r in rows:
                if benchmark is not None and r.benchmark != benchmark:
                    continue
                if r.result in DECIDED and r.scored:
                    votes[r.instance][tool] = r.result
        return {name: agreed(v) for name, v in votes.items()}
    return {name: agreed({"file": verdict}) for name, verdict in _read_plain(path).items()}


def _read_plain(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        try:
            rows = [r for r in csv.reader(f) if r and "".join(r).strip() and not r[0].lstrip().startswith("#")]
        except csv.Error as exc:  # NUL bytes, a field past csv's size limit: not a truth file
            raise ValueError(f"{path}: not a truth file: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: empty truth file (expected a header instance,truth)")
    header = [c.strip().lower() for c in rows[0]]
    if header not in (["instance", "truth"], ["onnx", "vnnlib", "truth"]):
        raise ValueError(f"{path}: the header must be instance,truth or onnx,vnnlib,truth, got {','.join(rows[0])}")
    out = {}
    for line, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise ValueError(f"{path}:{line}: expected {len(header)} columns, got {len(r)}")
        word = r[-1].strip().lower()
        if word not in _WORDS:
            raise ValueError(f"{path}:{line}: truth must be holds, violated, unsat or sat, got {r[-1].strip()!r}")
        name = r[0].strip() if len(r) == 2 else instance_name(r[0], r[1])
        if name in out and out[name] != _WORDS[word]:
            raise ValueError(f"{path}:{line}: {name} is given both {out[name]} and {_WORDS[word]}")
        out[name] = _WORDS[word]
    return out
