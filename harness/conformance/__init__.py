"""The conformance check behind ``harness check-plugin``, in the spirit of scikit-learn's check_estimator.

For each thing a plugin registers it runs that kind's contract on a toy model and dataset
(:mod:`harness.toy`), with the host's own artifact builder and the reference backend
(:mod:`harness.reference`), and reports each clause as pass, fail (with what to change) or
skip. See ``docs/authoring.md`` for the contracts.
"""

from harness.conformance.contract import Options
from harness.conformance.driver import check_plugin
from harness.conformance.report import CheckResult, Report
from harness.conformance.target import TargetError

__all__ = ["check_plugin", "CheckResult", "Options", "Report", "TargetError"]
