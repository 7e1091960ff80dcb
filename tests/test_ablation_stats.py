"""The ablation statistics against hand-computed cases and pROC's published DeLong results."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from study.ablation.stats import delong_test, paired_delta, seed_interval

ASAH = Path(__file__).parent / "data" / "asah.csv"


def _asah() -> dict[str, np.ndarray]:
    """pROC's aSAH data (Turck et al. 2010; 113 patients, outcome 1 = Poor), as bundled with R's pROC."""
    with ASAH.open() as handle:
        rows = list(csv.DictReader(handle))
    return {column: np.array([float(row[column]) for row in rows]) for column in rows[0]}


def test_seed_interval_is_the_t_interval_by_hand() -> None:
    # mean 0.8, sd 0.1 (ddof 1), n 3: half width t(0.975, 2) * 0.1 / sqrt(3) = 4.302653 * 0.057735 = 0.248414
    interval = seed_interval([0.7, 0.8, 0.9], 0.95)
    assert interval.n == 3 and math.isclose(interval.mean, 0.8) and math.isclose(interval.sd, 0.1)
    assert math.isclose(interval.low, 0.8 - 0.248414, abs_tol=1e-6)
    assert math.isclose(interval.high, 0.8 + 0.248414, abs_tol=1e-6)


def test_seed_interval_of_one_value_has_no_spread() -> None:
    interval = seed_interval([0.9], 0.95)
    assert interval.mean == 0.9 and math.isnan(interval.low) and math.isnan(interval.sd)


def test_paired_delta_by_hand() -> None:
    # differences 0.10, 0.05, 0.05: mean 0.0666667, sd 0.0288675, se 0.0166667, t(0.975, 2) 4.302653
    delta = paired_delta([0.8, 0.9, 0.85], [0.7, 0.85, 0.8], 0.95)
    assert delta.n == 3 and math.isclose(delta.mean, 0.0666667, abs_tol=1e-6)
    assert math.isclose(delta.low, 0.0666667 - 0.0717109, abs_tol=1e-6)
    assert math.isclose(delta.high, 0.0666667 + 0.0717109, abs_tol=1e-6)
    assert math.isclose(delta.p, 0.0571910, abs_tol=1e-6)  # t = 4, df = 2


def test_paired_delta_pairs_by_seed_not_by_pooling() -> None:
    """A near-constant shift is clear when paired, though the seeds' spread (0.1) is far larger than it."""
    delta = paired_delta([0.711, 0.809, 0.911], [0.7, 0.8, 0.9], 0.95)
    assert 0.0 < delta.low < delta.mean < delta.high < 0.02 and delta.p < 0.01


def test_paired_delta_without_spread_claims_no_interval() -> None:
    """Two seeds that moved accuracy by the same film count: no spread, so no interval and no p."""
    delta = paired_delta([0.65, 0.60], [0.80, 0.75], 0.95)
    assert math.isclose(delta.mean, -0.15) and math.isnan(delta.low) and math.isnan(delta.p)


@pytest.mark.parametrize(
    ("first", "second", "z", "p"),
    [
        # pROC tests/testthat/test-roc.test.R: roc.test(r.wfns, r.s100b), (r.wfns, r.ndka), (r.ndka, r.s100b)
        ("wfns", "s100b", 2.20898359144091, 0.0271757822291882),
        ("wfns", "ndka", 2.79777591868904, 0.00514557970691098),
        ("ndka", "s100b", -1.39077002573558, 0.164295175223054),
    ],
)
def test_delong_matches_proc_published_results(first: str, second: str, z: float, p: float) -> None:
    data = _asah()
    result = delong_test(data["outcome"], data[first], data[second])
    assert math.isclose(result.z, z, rel_tol=1e-9) and math.isclose(result.p, p, rel_tol=1e-9)
    reversed_order = delong_test(data["outcome"], data[second], data[first])
    assert math.isclose(reversed_order.z, -z, rel_tol=1e-9) and math.isclose(reversed_order.p, p, rel_tol=1e-9)


def test_delong_auc_and_variance_match_proc() -> None:
    """AUCs printed by pROC (0.8237, 0.7314) and var/cov from its test-var.R and test-cov.R."""
    data = _asah()
    result = delong_test(data["outcome"], data["wfns"], data["s100b"])
    assert round(result.auc_a, 4) == 0.8237 and round(result.auc_b, 4) == 0.7314
    variance = 0.00146991470882363 + 0.00266868245717244 - 2 * 0.00119615567376754
    assert math.isclose(result.se**2, variance, rel_tol=1e-9)


def test_delong_of_a_curve_with_itself_is_no_difference() -> None:
    data = _asah()
    result = delong_test(data["outcome"], data["wfns"], data["wfns"])
    assert result.z == 0.0 and result.p == 1.0


def test_delong_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        delong_test(np.ones(4), np.arange(4.0), np.arange(4.0))


def test_intervals_are_cut_to_the_metric_range() -> None:
    interval = seed_interval([0.5, 0.9], 0.95, bounds=(0.0, 1.0))  # t(0.975, 1) = 12.7: 0.7 +- 2.54
    assert interval.low == 0.0 and interval.high == 1.0 and math.isclose(interval.mean, 0.7)
