"""Hostile files for the fault-injection tests: pickles whose ``__reduce__`` writes a marker file.

A file built here runs its payload under a plain ``pickle.load`` or ``torch.load(weights_only=False)``
(the tests check that themselves), so a test that finds no marker after the harness read the file
shows the harness ran none of the file's code.
"""

from __future__ import annotations

import os
from pathlib import Path


class ExecPayload:
    """Unpickling calls ``exec`` with code that writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


class SystemPayload:
    """Unpickling calls ``os.system`` to touch ``marker`` (``posix.system`` in the pickle)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def module_with_payload(marker: Path, payload: type = ExecPayload):
    """A real ``torch.nn.Sequential`` that carries a payload attribute: it looks like a module file."""
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    module.payload = payload(marker)
    return module


def write_module_payload(path: Path, marker: Path, payload: type = ExecPayload) -> Path:
    """``torch.save`` of :func:`module_with_payload` at ``path``."""
    import torch

    torch.save(module_with_payload(marker, payload), path)
    return path


def payload_runs_under_plain_load(path: Path, marker: Path) -> bool:
    """Whether ``torch.load(weights_only=False)`` of ``path`` writes ``marker`` (the file is really hostile)."""
    import torch

    try:
        torch.load(path, weights_only=False)  # the unsafe call, on purpose, to prove the file is hostile
    except Exception:  # noqa: BLE001 - the payload has run (or not) by then
        pass
    ran = marker.exists()
    if ran:
        marker.unlink()
    return ran
