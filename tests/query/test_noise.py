"""The statistics of harness.query.noise equal scipy.stats' own: compare computes them with scipy.special's
Student-t distribution function (scipy.stats takes a second to import), so scipy.stats checks them here."""

import numpy as np
import pytest
from scipy.stats import false_discovery_control, ttest_ind
from scipy.stats import t as student

from harness.query import noise


def samples(seed):
    """Per-process values of two runs, of different sizes and spreads (sometimes one run constant)."""
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(noise.MIN_PROCESSES, 12, 2)
    a = rng.uniform(0.5, 2) * rng.lognormal(0, rng.uniform(0.001, 0.3), n1)
    b = rng.uniform(0.5, 2) * rng.lognormal(0, rng.uniform(0.001, 0.3), n2)
    if seed % 5 == 0:
        b = np.full(n2, b[0])
    return a, b


@pytest.mark.filterwarnings("ignore:Precision loss occurred")  # scipy's, on a constant run
@pytest.mark.parametrize("seed", range(40))
def test_per_process_p_is_welchs_t_test_of_scipy(seed):
    a, b = samples(seed)
    expected = ttest_ind(np.log(a), np.log(b), equal_var=False).pvalue
    assert noise.per_process_p(list(a), list(b)) == pytest.approx(float(expected), rel=1e-12, abs=1e-300)


def test_per_process_p_of_constant_runs_and_too_few_processes():
    assert noise.per_process_p([1.0] * 3, [1.0] * 4) == 1.0
    assert noise.per_process_p([1.0] * 3, [2.0] * 4) == 0.0
    assert noise.per_process_p([1.0, 1.1], [1.0, 1.2, 1.3]) is None


@pytest.mark.parametrize("seed", range(40))
def test_history_p_is_the_prediction_interval_with_scipys_t(seed):
    rng = np.random.default_rng(seed)
    earlier = rng.lognormal(0, 0.05, int(rng.integers(noise.MIN_HISTORY, 11)))
    new = float(rng.lognormal(0, 0.1))
    logs = np.log(earlier)
    stat = (np.log(new) - logs.mean()) / (logs.std(ddof=1) * np.sqrt(1 + 1 / len(logs)))
    expected = 2 * student.sf(abs(stat), len(logs) - 1)
    assert noise.history_p(earlier, new) == pytest.approx(float(expected), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 50, 400])
def test_benjamini_hochberg_equals_scipys_false_discovery_control(n):
    rng = np.random.default_rng(n)
    ps = rng.uniform(0, 1, n) ** 4
    if n > 4:
        ps[1:4] = ps[0]  # ties
        ps[-2:] = 1.0  # as the changes within the threshold count
    expected = false_discovery_control(ps, method="bh") if n else ps
    np.testing.assert_array_equal(noise.benjamini_hochberg(ps), expected)
