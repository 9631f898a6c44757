"""VNN-LIB properties: the standard subset VNN-COMP benchmarks use, parsed and written.

A VNN-LIB file describes the *unsafe* set: inputs ``X_i`` in a box whose outputs ``Y_j`` satisfy
the output constraints. A verifier answers ``holds`` when no input reaches it and ``violated``
(VNN-COMP's ``sat``) with a witness when one does.

Supported, as VNN-COMP uses it: ``(declare-const X_i Real)`` / ``(declare-const Y_j Real)``;
``(assert ...)`` of ``<=``, ``>=`` (``<`` and ``>`` read as their non-strict forms) between linear
terms (numbers, variables, ``+``, ``-``, ``*`` by a constant), combined with ``and`` and ``or``.
Input atoms must bound one input by a constant; output atoms are linear in the outputs. The
formula is expanded into a disjunction of :class:`Term` s, each an input box with a conjunction
of output constraints ``a @ y <= b`` (several boxes, as some VNN-COMP properties have, are
several terms).
"""

from __future__ import annotations

import gzip
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Expansion into disjunctive normal form stops here (a property this large is not in the subset).
MAX_TERMS = 100_000
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_VAR = re.compile(r"^([XY])_(\d+)$")


class VnnlibError(ValueError):
    """The file is not in the supported VNN-LIB subset; the message says where and why."""


@dataclass(frozen=True)
class Term:
    """One disjunct of the unsafe set: ``lower <= x <= upper`` and ``a @ y <= b``."""

    lower: Any  # numpy float64 (n_inputs,)
    upper: Any
    a: Any  # (m, n_outputs)
    b: Any  # (m,)


@dataclass(frozen=True)
class Property:
    """A parsed VNN-LIB file: the union of its terms is the unsafe set."""

    n_inputs: int
    n_outputs: int
    terms: tuple[Term, ...]

    def boxes(self) -> list[tuple[Any, Any, list[tuple[Any, Any]]]]:
        """Terms grouped by input box: ``[(lower, upper, [(a, b), ...]), ...]``.

        A robustness property has one box and one output conjunction per other class; verifiers
        bound the network once per box.
        """
        groups: dict[bytes, tuple[Any, Any, list]] = {}
        for t in self.terms:
            key = t.lower.tobytes() + t.upper.tobytes()
            groups.setdefault(key, (t.lower, t.upper, []))[2].append((t.a, t.b))
        return list(groups.values())

    def violated_by(self, x: Any, y: Any, input_tol: float = 0.0) -> bool:
        """Whether input ``x`` (within ``input_tol`` of a term's box) with outputs ``y`` is unsafe."""
        import numpy as np

        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if x.size != self.n_inputs or y.size != self.n_outputs:
            return False
        for t in self.terms:
            if np.all(x >= t.lower - input_tol) and np.all(x <= t.upper + input_tol) and np.all(t.a @ y <= t.b):
                return True
        return False

    def in_box(self, x: Any, input_tol: float = 0.0) -> bool:
        """Whether ``x`` lies (within ``input_tol``) in the box of some term."""
        import numpy as np

        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.size != self.n_inputs:
            return False
        return any(np.all(x >= t.lower - input_tol) and np.all(x <= t.upper + input_tol) for t in self.terms)


# ------------------------------------------------------------------ parsing


def _tokens(text: str) -> list[str]:
    lines = [line.split(";", 1)[0] for line in text.splitlines()]
    return _TOKEN.findall("\n".join(lines))


def _sexprs(tokens: list[str]) -> list[Any]:
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
        raise VnnlibError("unbalanced '(': the file ends inside an expression")
    return stack[0]


def _linear(expr: Any, declared: set[str]) -> tuple[dict[str, float], float]:
    """A term as ``({variable: coefficient}, constant)``."""
    if isinstance(expr, str):
        if _VAR.match(expr):
            if expr not in declared:
                raise VnnlibError(f"{expr} is used but not declared")
            return {expr: 1.0}, 0.0
        try:
            return {}, float(expr)
        except ValueError:
            raise VnnlibError(f"unknown symbol {expr!r}") from None
    if not expr or not isinstance(expr[0], str):
        raise VnnlibError(f"malformed term {_show(expr)}")
    op, args = expr[0], [_linear(a, declared) for a in expr[1:]]
    if op == "+":
        return _sum(args, [1.0] * len(args))
    if op == "-":
        if len(args) == 1:
            return _sum(args, [-1.0])
        return _sum(args, [1.0] + [-1.0] * (len(args) - 1))
    if op == "*":
        coef = 1.0
        var_parts = [a for a in args if a[0]]
        if len(var_parts) > 1:
            raise VnnlibError(f"non-linear product {_show(expr)}")
        for coeffs, const in args:
            if not coeffs:
                coef *= const
        if not var_parts:
            return {}, coef
        coeffs, const = var_parts[0]
        return {k: v * coef for k, v in coeffs.items()}, const * coef
    raise VnnlibError(f"unsupported operator {op!r} in {_show(expr)}")


def _sum(parts: list[tuple[dict, float]], signs: list[float]) -> tuple[dict[str, float], float]:
    coeffs: dict[str, float] = {}
    const = 0.0
    for (c, k), s in zip(parts, signs):
        for var, v in c.items():
            coeffs[var] = coeffs.get(var, 0.0) + s * v
        const += s * k
    return coeffs, const


def _show(expr: Any) -> str:
    if isinstance(expr, str):
        return expr
    return "(" + " ".join(_show(e) for e in expr) + ")"


#: An atom: ``sum(coeffs[v] * v) <= rhs``.
_Atom = tuple[dict[str, float], float]


def _dnf(expr: Any, declared: set[str]) -> list[list[_Atom]]:
    """A formula as a list of conjunctions of atoms."""
    if isinstance(expr, str) or not expr:
        raise VnnlibError(f"expected a formula, got {_show(expr)}")
    op = expr[0]
    if op == "and":
        out: list[list[_Atom]] = [[]]
        for sub in expr[1:]:
            out = [a + b for a, b in itertools.product(out, _dnf(sub, declared))]
            if len(out) > MAX_TERMS:
                raise VnnlibError(f"more than {MAX_TERMS} terms after expanding 'and' of 'or's")
        return out
    if op == "or":
        out = []
        for sub in expr[1:]:
            out += _dnf(sub, declared)
        if len(out) > MAX_TERMS:
            raise VnnlibError(f"more than {MAX_TERMS} terms in an 'or'")
        return out
    if op in ("<=", ">=", "<", ">"):
        if len(expr) != 3:
            raise VnnlibError(f"{op} takes two terms: {_show(expr)}")
        (lc, lk), (rc, rk) = _linear(expr[1], declared), _linear(expr[2], declared)
        if op in (">=", ">"):
            (lc, lk), (rc, rk) = (rc, rk), (lc, lk)
        coeffs, const = _sum([(lc, lk), (rc, rk)], [1.0, -1.0])
        coeffs = {k: v for k, v in coeffs.items() if v != 0.0}
        return [[(coeffs, 0.0 - const)]]
    raise VnnlibError(f"unsupported formula {_show(expr)[:80]} (the subset has and, or, <=, >=)")


def parse_vnnlib(text: str) -> Property:
    """Parse VNN-LIB text into a :class:`Property`; raise :class:`VnnlibError` outside the subset."""
    import numpy as np

    forms = _sexprs(_tokens(text))
    declared: set[str] = set()
    asserts = []
    for form in forms:
        if not isinstance(form, list) or not form:
            raise VnnlibError(f"unexpected top-level {_show(form)}")
        if form[0] == "declare-const":
            if len(form) != 3 or not isinstance(form[1], str) or not _VAR.match(form[1]):
                raise VnnlibError(f"declare-const takes X_i or Y_j and a sort: {_show(form)}")
            declared.add(form[1])
        elif form[0] == "assert":
            if len(form) != 2:
                raise VnnlibError(f"assert takes one formula: {_show(form)[:80]}")
            asserts.append(form[1])
        else:
            raise VnnlibError(f"unsupported command {form[0]!r}")
    xs = sorted(int(_VAR.match(v).group(2)) for v in declared if v[0] == "X")
    ys = sorted(int(_VAR.match(v).group(2)) for v in declared if v[0] == "Y")
    if xs != list(range(len(xs))) or ys != list(range(len(ys))) or not xs or not ys:
        raise VnnlibError("declare X_0..X_n-1 and Y_0..Y_m-1 without gaps (found "
                          f"{len(xs)} inputs, {len(ys)} outputs)")
    n_in, n_out = len(xs), len(ys)
    conjunctions: list[list[_Atom]] = [[]]
    for formula in asserts:
        conjunctions = [a + b for a, b in itertools.product(conjunctions, _dnf(formula, declared))]
        if len(conjunctions) > MAX_TERMS:
            raise VnnlibError(f"more than {MAX_TERMS} terms")
    terms = []
    for atoms in conjunctions:
        lower = np.full(n_in, -np.inf)
        upper = np.full(n_in, np.inf)
        rows, rhs = [], []
        for coeffs, bound in atoms:
            kinds = {v[0] for v in coeffs}
            if not coeffs:
                if 0.0 <= bound:
                    continue  # a constant truth
                lower[:] = np.inf  # a constant falsehood: the term is empty
                continue
            if kinds == {"X"}:
                if len(coeffs) != 1:
                    raise VnnlibError("only bounds on single inputs are supported, got a linear input "
                                      f"constraint over {', '.join(sorted(coeffs))}")
                (var, c), = coeffs.items()
                i = int(var[2:])
                if c > 0:
                    upper[i] = min(upper[i], bound / c)
                else:
                    lower[i] = max(lower[i], bound / c)
            elif kinds == {"Y"}:
                row = np.zeros(n_out)
                for var, c in coeffs.items():
                    row[int(var[2:])] = c
                rows.append(row)
                rhs.append(bound)
            else:
                raise VnnlibError(f"a constraint mixes inputs and outputs: {', '.join(sorted(coeffs))}")
        if np.any(lower > upper):
            continue  # an empty box contributes nothing to the unsafe set
        if not np.all(np.isfinite(lower)) or not np.all(np.isfinite(upper)):
            missing = [i for i in range(n_in) if not (np.isfinite(lower[i]) and np.isfinite(upper[i]))]
            raise VnnlibError(f"input X_{missing[0]} has no lower or upper bound ({len(missing)} unbounded)")
        a = np.array(rows, dtype=np.float64).reshape(len(rows), n_out)
        terms.append(Term(lower=lower, upper=upper, a=a, b=np.array(rhs, dtype=np.float64)))
    return Property(n_inputs=n_in, n_outputs=n_out, terms=tuple(terms))


def read_vnnlib(path: str | Path) -> Property:
    """Read and parse a ``.vnnlib`` file (``.vnnlib.gz`` too); errors name the file."""
    p = Path(path)
    data = p.read_bytes()
    if p.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        return parse_vnnlib(data.decode())
    except VnnlibError as exc:
        raise VnnlibError(f"{p}: {exc}") from None


# ------------------------------------------------------------------ writing


def _number(v: float) -> str:
    return repr(float(v))


def _row(a_row: Any, b: float) -> str:
    nz = [(j, float(c)) for j, c in enumerate(a_row) if c != 0.0]
    if len(nz) == 2 and b == 0.0 and sorted(c for _, c in nz) == [-1.0, 1.0]:
        pos = next(j for j, c in nz if c > 0)
        neg = next(j for j, c in nz if c < 0)
        return f"(<= Y_{pos} Y_{neg})"
    if len(nz) == 1 and nz[0][1] == 1.0:
        return f"(<= Y_{nz[0][0]} {_number(b)})"
    parts = " ".join(f"(* {_number(c)} Y_{j})" for j, c in nz)
    return f"(<= (+ {parts}) {_number(b)})" if len(nz) > 1 else f"(<= {parts} {_number(b)})"


def format_vnnlib(lower: Any, upper: Any, outputs: list[tuple[Any, Any]], n_outputs: int,
                  comment: str = "") -> str:
    """VNN-LIB text for one input box and the unsafe output set ``OR_k (a_k @ y <= b_k)``."""
    lines = [f"; {line}" for line in comment.splitlines()] if comment else []
    lines += [f"(declare-const X_{i} Real)" for i in range(len(lower))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_outputs)]
    for i, (lo, hi) in enumerate(zip(lower, upper)):
        lines.append(f"(assert (>= X_{i} {_number(lo)}))")
        lines.append(f"(assert (<= X_{i} {_number(hi)}))")
    conj = []
    for a, b in outputs:
        rows = [_row(a[r], b[r]) for r in range(len(b))]
        conj.append(rows[0] if len(rows) == 1 else "(and " + " ".join(rows) + ")")
    if len(conj) == 1:
        lines.append(f"(assert {conj[0]})")
    else:
        lines.append("(assert (or")
        lines += [f"    {c if c.startswith('(and') else '(and ' + c + ')'}" for c in conj]
        lines.append("))")
    return "\n".join(lines) + "\n"


def robustness_outputs(label: int, n_outputs: int) -> list[tuple[Any, Any]]:
    """The unsafe set of a classification property: some other class scores at least ``label``'s.

    One term per other class ``j``: ``Y_label - Y_j <= 0``.
    """
    import numpy as np

    out = []
    for j in range(n_outputs):
        if j == label:
            continue
        a = np.zeros((1, n_outputs))
        a[0, label], a[0, j] = 1.0, -1.0
        out.append((a, np.zeros(1)))
    return out
