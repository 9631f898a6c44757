"""A minimal VNN-LIB reader and writer: input boxes (or a union of boxes), output constraints in DNF.

VNN-LIB states the *unsafe* set: a property is violated when some input inside the box
gives outputs that satisfy the output constraints ("sat" means a counterexample exists).
This reader covers the common VNN-COMP shape: ``(declare-const X_i Real)`` and
``(declare-const Y_j Real)``, a lower and an upper bound per input, and output
constraints made of ``<=`` / ``>=`` atoms between an output and a number or another output,
combined with ``and`` / ``or``. Input bounds may be combined with ``or`` too, as ACAS Xu's
prop_6 does (``(assert (or (and (<= X_0 ..) (>= X_0 ..) ...) (and ...)))``): the input set is then
a union of boxes (:meth:`Property.input_boxes`), and the property holds when it holds on every box
and is violated when it is violated on any. Anything else is rejected with a clear error, never
misread. The soundness benchmark (planted counterexamples, scoring) lives in :mod:`harness.verify`;
the built-in verifiers read properties as matrices (:meth:`Property.matrices`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

_VAR = re.compile(r"^([XY])_(\d+)$")

#: What a verifier's ``result`` may be (parse verdicts exactly: "sat" is a substring of "unsat").
VERDICTS = ("holds", "violated", "unknown", "timeout")


class VnnlibError(HarnessError, ValueError):
    """A VNN-LIB text is malformed or outside the supported subset."""


@dataclass(frozen=True)
class Atom:
    """``lhs <= rhs``; each side a variable name (``Y_0``) or a number."""

    lhs: str | float
    rhs: str | float

    def holds(self, y: Sequence[float], atol: float = 0.0) -> bool:
        """Whether the outputs ``y`` satisfy the atom, allowing ``atol`` of slack."""
        return _value(self.lhs, y) <= _value(self.rhs, y) + atol

    def text(self) -> str:
        """The atom as VNN-LIB."""
        return f"(<= {_fmt(self.lhs)} {_fmt(self.rhs)})"


#: More boxes than this from combining input disjunctions is refused (a product of ``or`` asserts).
MAX_BOXES = 4096


@dataclass(frozen=True)
class Property:
    """The input set (a box, or a union of boxes) and the unsafe output set in DNF.

    :param lower: the lower bounds of the input box; for a union of boxes, of their hull.
    :param upper: the upper bounds, likewise. A tool that searches only ``[lower, upper]`` is sound
        for proofs but may find a "counterexample" outside every box (rejected by the replay): read
        :meth:`input_boxes`.
    :param num_outputs: the declared outputs.
    :param unsafe: the unsafe output set, a disjunction of conjunctions of atoms.
    :param boxes: for a union of boxes, each ``(lower, upper)``; empty for one box.
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    num_outputs: int
    unsafe: tuple[tuple[Atom, ...], ...]
    boxes: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = ()

    def input_boxes(self) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
        """The input set as boxes ``[(lower, upper), ...]``: verify each (holds iff it holds on all)."""
        return list(self.boxes) if self.boxes else [(self.lower, self.upper)]

    def contains(self, x: Sequence[float], atol: float = 0.0) -> bool:
        """Whether ``x`` lies inside the input set, some box of it (with ``atol`` of slack)."""
        return len(x) == len(self.lower) and any(
            all(lo - atol <= v <= hi + atol for v, lo, hi in zip(x, lower, upper))
            for lower, upper in self.input_boxes())

    def is_unsafe(self, y: Sequence[float], atol: float = 0.0) -> bool:
        """Whether the outputs ``y`` fall in the unsafe set (a counterexample's outputs)."""
        return any(all(a.holds(y, atol) for a in conj) for conj in self.unsafe)

    def matrices(self) -> list[tuple[Any, Any]]:
        """Each conjunction of the unsafe set as numpy ``(a, b)``: unsafe when ``a @ y <= b``.

        The form bound propagation, MILP encodings and attacks work with.
        """
        import numpy as np

        out = []
        for conj in self.unsafe:
            a = np.zeros((len(conj), self.num_outputs))
            b = np.zeros(len(conj))
            for r, atom in enumerate(conj):
                for term, sign in ((atom.lhs, 1.0), (atom.rhs, -1.0)):
                    if isinstance(term, str):
                        a[r, int(term[2:])] += sign
                    else:
                        b[r] -= sign * term
            out.append((a, b))
        return out

    def text(self) -> str:
        """The property as VNN-LIB."""
        lines = [f"(declare-const X_{i} Real)" for i in range(len(self.lower))]
        lines += [f"(declare-const Y_{j} Real)" for j in range(self.num_outputs)]
        if self.boxes:
            cases = [" ".join(f"(>= X_{i} {_fmt(lo)}) (<= X_{i} {_fmt(hi)})" for i, (lo, hi) in
                              enumerate(zip(lower, upper))) for lower, upper in self.boxes]
            lines.append("(assert (or " + " ".join(f"(and {c})" for c in cases) + "))")
        for i, (lo, hi) in enumerate(zip(self.lower, self.upper)):
            if not self.boxes:
                lines += [f"(assert (>= X_{i} {_fmt(lo)}))", f"(assert (<= X_{i} {_fmt(hi)}))"]
        disjuncts = " ".join("(and " + " ".join(a.text() for a in conj) + ")" for conj in self.unsafe)
        lines.append(f"(assert (or {disjuncts}))")
        return "\n".join(lines) + "\n"


def _fmt(v: str | float) -> str:
    return v if isinstance(v, str) else repr(float(v))


def _value(term: str | float, y: Sequence[float]) -> float:
    if isinstance(term, str):
        return float(y[int(term[2:])])
    return term


def _tokens(text: str) -> list[str]:
    text = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    return re.findall(r"\(|\)|[^\s()]+", text)


def _sexprs(tokens: list[str]) -> list:
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise VnnlibError("unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise VnnlibError("unbalanced '('")
    return stack[0]


def _term(tok) -> str | float:
    if isinstance(tok, list):
        raise VnnlibError(f"only variables and numbers may be compared, got {_show(tok)}")
    if _VAR.match(tok):
        return tok
    try:
        return float(tok)
    except ValueError:
        raise VnnlibError(f"unknown term {tok!r} (expected X_i, Y_j or a number)") from None


def _show(expr) -> str:
    return "(" + " ".join(_show(e) for e in expr) + ")" if isinstance(expr, list) else str(expr)


def _atom(expr) -> Atom:
    op, a, b = expr[0], _term(expr[1]), _term(expr[2])
    return Atom(a, b) if op in ("<=", "<") else Atom(b, a)


def _dnf(expr) -> list[list]:
    """An output formula as a list of conjunctions of comparison expressions."""
    if not isinstance(expr, list) or not expr:
        raise VnnlibError(f"expected a formula, got {_show(expr)}")
    head = expr[0]
    if head in ("<=", ">=", "<", ">") and len(expr) == 3:
        return [[expr]]
    if head == "and":
        parts = [_dnf(e) for e in expr[1:]]
        return [sum(combo, []) for combo in itertools.product(*parts)]
    if head == "or":
        return [conj for e in expr[1:] for conj in _dnf(e)]
    raise VnnlibError(f"unsupported formula {_show(expr)} (supported: <=, >=, <, >, and, or)")


def parse(text: str) -> Property:
    """Parse a VNN-LIB text of the supported subset into a :class:`Property`."""
    inputs: set[int] = set()
    outputs: set[int] = set()
    input_asserts: list[list[list]] = []
    output_asserts: list[list[list]] = []
    for expr in _sexprs(_tokens(text)):
        if not isinstance(expr, list) or not expr:
            raise VnnlibError(f"unexpected {_show(expr)} at top level")
        if expr[0] == "declare-const":
            m = _VAR.match(expr[1]) if len(expr) == 3 else None
            if m is None:
                raise VnnlibError(f"unsupported declaration {_show(expr)} (expected X_i or Y_j Real)")
            (inputs if m.group(1) == "X" else outputs).add(int(m.group(2)))
            continue
        if expr[0] != "assert" or len(expr) != 2:
            raise VnnlibError(f"unsupported command {_show(expr)}")
        body = expr[1]
        conjuncts = body[1:] if isinstance(body, list) and body and body[0] == "and" else [body]
        for part in conjuncts:
            names = [t for t in _flatten(part) if isinstance(t, str) and _VAR.match(t)]
            if names and all(n.startswith("X_") for n in names):
                input_asserts.append(_dnf(part))  # one box, or a union of boxes (an ``or``)
            elif any(n.startswith("X_") for n in names):
                raise VnnlibError(f"constraints mixing inputs and outputs are not supported: {_show(part)}")
            else:
                output_asserts.append(_dnf(part))
    if not inputs:
        raise VnnlibError("no input variables declared")
    n_in = max(inputs) + 1
    boxes = _boxes(input_asserts, n_in)
    if not output_asserts:
        raise VnnlibError("no output constraint: the unsafe set is not stated")
    conjs = [tuple(_atom(a) for a in sum(combo, [])) for combo in itertools.product(*output_asserts)]
    n_out = max(outputs) + 1 if outputs else 0
    used = {int(t[2:]) for c in conjs for a in c for t in (a.lhs, a.rhs) if isinstance(t, str)}
    if used and max(used) >= n_out:
        raise VnnlibError(f"output Y_{max(used)} is used but not declared")
    lower = tuple(min(b[0][i] for b in boxes) for i in range(n_in))
    upper = tuple(max(b[1][i] for b in boxes) for i in range(n_in))
    return Property(lower=lower, upper=upper, num_outputs=n_out, unsafe=tuple(conjs),
                    boxes=tuple(boxes) if len(boxes) > 1 else ())


def _boxes(input_asserts: list[list[list]], n_in: int) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """The input set as boxes: the input asserts are a conjunction, each a disjunction of bound lists."""
    count = 1
    for options in input_asserts:
        count *= len(options)
    if count > MAX_BOXES:
        raise VnnlibError(f"the input disjunctions make {count} boxes (at most {MAX_BOXES} are supported)")
    boxes, seen, empty = [], set(), 0
    for combo in itertools.product(*input_asserts):
        lower: dict[int, float] = {}
        upper: dict[int, float] = {}
        for expr in sum(combo, []):
            _input_bound(expr, lower, upper)
        missing = [i for i in range(n_in) if i not in lower or i not in upper]
        if missing:
            raise VnnlibError(f"inputs without both bounds: {', '.join(f'X_{i}' for i in missing)}")
        box = (tuple(lower[i] for i in range(n_in)), tuple(upper[i] for i in range(n_in)))
        if any(lo > hi for lo, hi in zip(*box)):
            empty += 1  # a case of the disjunction no input satisfies: it adds nothing to the set
            continue
        if box not in seen:
            seen.add(box)
            boxes.append(box)
    if not boxes:
        raise VnnlibError("the input set is empty: every box has a lower bound above its upper bound"
                          if empty else "no input bounds")
    return boxes


def _flatten(expr) -> list:
    return [t for e in expr for t in _flatten(e)] if isinstance(expr, list) else [expr]


def _input_bound(expr, lower: dict[int, float], upper: dict[int, float]) -> None:
    if not (isinstance(expr, list) and len(expr) == 3 and expr[0] in ("<=", ">=", "<", ">")):
        raise VnnlibError(f"input constraints must be bounds like (<= X_0 1.0), got {_show(expr)}")
    atom = _atom(expr)  # lhs <= rhs
    if isinstance(atom.lhs, str) and not isinstance(atom.rhs, str):
        bounds, i, v = upper, int(atom.lhs[2:]), atom.rhs
        v = min(v, bounds.get(i, math.inf))
    elif isinstance(atom.rhs, str) and not isinstance(atom.lhs, str):
        bounds, i, v = lower, int(atom.rhs[2:]), atom.lhs
        v = max(v, bounds.get(i, -math.inf))
    else:
        raise VnnlibError(f"input constraints must compare one input with a number, got {_show(expr)}")
    bounds[i] = v


def robustness(lower: Sequence[float], upper: Sequence[float], label: int, num_outputs: int) -> Property:
    """Local robustness of a classifier on a box: unsafe when some other class scores at least ``label``'s."""
    return Property(lower=tuple(float(v) for v in lower), upper=tuple(float(v) for v in upper),
                    num_outputs=num_outputs,
                    unsafe=tuple((Atom(f"Y_{label}", f"Y_{j}"),) for j in range(num_outputs) if j != label))


def load(path: str | Path) -> Property:
    """Parse a ``.vnnlib`` file (or a gzipped ``.vnnlib.gz``, as VNN-COMP benchmarks ship them)."""
    p = Path(path)
    data = p.read_bytes()
    if p.suffix == ".gz":
        import gzip

        data = gzip.decompress(data)
    try:
        return parse(data.decode())
    except VnnlibError as exc:
        raise VnnlibError(f"{p}: {exc}") from None
