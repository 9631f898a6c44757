"""The conformance check behind ``harness check-plugin``, in the spirit of scikit-learn's check_estimator.

For each thing a plugin registers it runs that kind's contract on a toy model and dataset
(:mod:`harness.devkit.toy`), with the host's own artifact builder and the reference backend
(:mod:`harness.measure.reference`), and reports each clause as pass, fail (with what to change) or
skip. See ``docs/authoring.md`` for the contracts.
"""

from harness.devkit.conformance.contract import Options
from harness.devkit.conformance.driver import check_plugin
from harness.devkit.conformance.report import CheckResult, Report
from harness.devkit.conformance.target import TargetError

__all__ = ["check_plugin", "CheckResult", "Options", "Report", "TargetError"]
