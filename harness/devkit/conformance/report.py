"""What a conformance check found: one :class:`CheckResult` per contract clause, and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class CheckResult:
    """One clause of one contract.

    :param subject: what was checked (``method global-magnitude``, ``plugin pruning``).
    :param check: the clause (``parameters``, ``apply``, ``claim sparsity``, ...).
    :param status: ``pass``, ``fail`` or ``skip``.
    :param reason: what was measured, or what is wrong and what to change.
    """

    subject: str
    check: str
    status: str
    reason: str = ""

    def line(self) -> str:
        """``  PASS  check: reason`` for terminals."""
        text = f"  {self.status.upper():4}  {self.check}"
        return f"{text}: {self.reason}" if self.reason else text


@dataclass
class Report:
    """Every result of ``harness check-plugin TARGET``."""

    target: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        """The failed clauses."""
        return [r for r in self.results if r.status == FAIL]

    @property
    def ok(self) -> bool:
        """No clause failed (skips do not fail a plugin)."""
        return not self.failures

    def counts(self) -> dict[str, int]:
        """``{"pass": n, "fail": n, "skip": n}``."""
        return {s: sum(1 for r in self.results if r.status == s) for s in (PASS, FAIL, SKIP)}

    def summary(self) -> str:
        """``12 passed, 1 failed, 2 skipped``."""
        c = self.counts()
        return f"{c[PASS]} passed, {c[FAIL]} failed, {c[SKIP]} skipped"

    def text(self) -> str:
        """The whole report, grouped by subject, as the CLI prints it."""
        lines: list[str] = []
        subject = None
        for r in self.results:
            if r.subject != subject:
                subject = r.subject
                lines.append(subject)
            lines.append(r.line())
        lines.append(f"{self.target}: {self.summary()}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-able form (``harness check-plugin --json``)."""
        return {"target": self.target, "ok": self.ok, "counts": self.counts(),
                "results": [asdict(r) for r in self.results]}
