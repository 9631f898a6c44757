"""The ``vnncomp`` verifier: any VNN-COMP competition tool, plugged in by configuration alone.

A suite file names the tool's folder, which holds the competition's scripts::

    verifiers = [{ name = "vnncomp", tool = "tools/my-verifier" }]

and the harness calls ``prepare_instance.sh`` and ``run_instance.sh`` as the competition does
(:mod:`harness.verify.process`), reading the verdict and counterexample from the result file the
tool writes. The tool brings its own environment. Registered as a built-in plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.api import Param, VerifierSpec, hookimpl

RUN_SCRIPT = "run_instance.sh"


def tool_folder(params: Mapping[str, Any]) -> Path:
    """The tool's folder (the suite-file planner has made a relative path absolute)."""
    return Path(params["tool"])


def available(params: Mapping[str, Any]) -> tuple[bool, str]:
    """The folder must hold ``run_instance.sh``."""
    folder = tool_folder(params)
    if not (folder / RUN_SCRIPT).is_file():
        return False, f"no {RUN_SCRIPT} in {folder}"
    return True, ""


VNNCOMP = VerifierSpec(
    name="vnncomp", tool=tool_folder, available=available,
    params=(
        Param("tool", str, grid=False, help="the tool's folder, with run_instance.sh (VNN-COMP's scripts)"),
        Param("category", str, default="", grid=False,
              help="the benchmark category passed to the scripts (default: the network's folder name)"),
        Param("prepare_timeout_s", float, default=300.0, min=1.0, grid=False,
              help="time allowed to prepare_instance.sh (not counted in the verdict's time)"),
        Param("label", str, default="", grid=False,
              help="a name for this tool on the leaderboard (its parameters identify it either way)"),
    ),
    description="a VNN-COMP tool folder (prepare_instance.sh / run_instance.sh), in its own environment",
)


@hookimpl
def harness_register_verifiers(register):
    """Register ``vnncomp``."""
    register(VNNCOMP)
