"""Do a method's claims hold on the artifact it built? (``harness check-plugin``'s claims clauses)

The measuring is :mod:`harness.measure.claims`, the same checker the soundness suite runs on every
result; this module words its checks as clauses: ``(claim, ok, reason)``, ``ok`` ``None`` for
claims that are recorded, not measured.
"""

from __future__ import annotations

from typing import Any

from harness.measure.claims import QUALIFIERS, Check, check_artifact
from harness.measure.honesty import claims_fix
from harness.plugin.specs import Artifact

#: How a passing claim is named in its clause's reason.
WHAT = {"channel_sparsity": "share of all-zero output channels", "weight_bits": "most distinct values in a group",
        "n_m": "N:M pattern", "block_shape": "zeros in whole blocks", "max_rank": "widest factored layer"}


def _value(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _failure(c: Check) -> str:
    tol = f" (tolerance {c.tolerance * 100:g} percentage points)" if c.tolerance is not None else ""
    if isinstance(c.claimed, (int, float)) and isinstance(c.measured, float):
        return f"{c.format}: measured {_value(c.measured)} {c.detail}, claimed {float(c.claimed):.4f}{tol}"
    return f"{c.format}: {c.detail} (measured {_value(c.measured)}, claimed {c.claimed!r})"


def check_claims(artifact: Artifact, claims: dict) -> list[tuple[str, bool | None, str]]:
    """``(claim, ok, reason)`` for every claim in ``claims`` (the artifact's manifest's); ``ok`` is
    ``None`` for claims that are not measured."""
    report = check_artifact(artifact)
    results: list[tuple[str, bool | None, str]] = []
    for key, claimed in claims.items():
        if key in report.unchecked:
            results.append((key, None, report.unchecked[key]))
            continue
        if key in QUALIFIERS:
            continue
        checks = report.of(key)
        if not checks:
            continue
        bad = [c for c in checks if not c.ok]
        if bad:
            # What is wrong, then what to change (the docs' promise for every failed clause).
            results.append((key, False, "; ".join(_failure(c) for c in bad[:4])
                            + f": {claims_fix(key, claimed, bad[0].measured)}"))
            continue
        what = f"{key} {checks[0].detail}" if checks[0].detail.startswith(("over ", "of ")) else WHAT.get(key, key)
        if key == "channel_sparsity" and claims.get("structured"):
            what = "share of output channels removed"
        measured = ", ".join(f"{c.format} {_value(c.measured)}" for c in checks if not c.claim.startswith(f"{key}["))
        results.append((key, True, f"{what}: {measured or f'{len(checks)} layers'} (claimed {claimed!r})"))
    return results
