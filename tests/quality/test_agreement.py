import json
import time

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from labelloop.core.errors import ValidationError
from labelloop.quality.agreement import (
    alpha_bootstrap_ci,
    batch_agreement,
    bootstrap_ci,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_from_counts,
)


def noisy_reliability(seed, n_coders=5, n_units=60, n_values=5, missing=0.3):
    """Coders who copy a shared 'true' value with prob 0.7, with missing entries."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, n_values + 1, n_units)
    data = np.where(rng.random((n_coders, n_units)) < 0.7, truth,
                    rng.integers(1, n_values + 1, (n_coders, n_units))).astype(float)
    data[rng.random(data.shape) < missing] = np.nan
    return data


def test_cohen_kappa_matches_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.choice(["cat", "dog", "bird"], 80)
        b = np.where(rng.random(80) < 0.6, a, rng.choice(["cat", "dog", "bird"], 80))
        assert cohen_kappa(list(a), list(b)) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_cohen_kappa_edge_cases():
    assert cohen_kappa(["x", "y"], ["x", "y"]) == pytest.approx(1.0)
    assert np.isnan(cohen_kappa(["x", "x"], ["x", "x"]))  # chance agreement is 1: undefined
    with pytest.raises(ValidationError):
        cohen_kappa(["x"], ["x", "y"])
    with pytest.raises(ValidationError):
        cohen_kappa([], [])


def test_fleiss_kappa_matches_statsmodels_with_equal_raters():
    rng = np.random.default_rng(1)
    for n_raters in (2, 3, 7):
        p = rng.dirichlet(np.ones(4), size=50)
        counts = np.array([rng.multinomial(n_raters, row) for row in p])
        assert fleiss_kappa(counts) == pytest.approx(sm_fleiss_kappa(counts), abs=1e-9)


def test_fleiss_kappa_with_varying_raters():
    # P_i = 1, 1/3, 1; p = (3/8, 5/8): kappa = (7/9 - 17/32) / (15/32) = 71/135
    counts = np.array([[2, 0], [1, 2], [0, 3]])
    assert fleiss_kappa(counts) == pytest.approx(71 / 135, abs=1e-12)
    # items with fewer than 2 ratings are ignored
    padded = np.vstack([counts, [[1, 0], [0, 0]]])
    assert fleiss_kappa(padded) == pytest.approx(71 / 135, abs=1e-12)
    assert np.isnan(fleiss_kappa(np.array([[3, 0], [2, 0]])))  # one category only
    assert np.isnan(fleiss_kappa(np.array([[1, 0]])))


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_matches_package(level):
    for seed in range(6):
        data = noisy_reliability(seed)
        ours = krippendorff_alpha(data, level)
        theirs = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert ours == pytest.approx(theirs, abs=1e-9)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_from_counts_matches_package(level):
    rng = np.random.default_rng(7)
    counts = np.array([rng.multinomial(rng.integers(0, 6), p)
                       for p in rng.dirichlet(np.ones(6) * 0.5, size=200)])
    ours = krippendorff_alpha_from_counts(counts, level)
    theirs = krippendorff.alpha(value_counts=counts, level_of_measurement=level)
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_krippendorff_2011_worked_example():
    # Krippendorff (2011), sec. C: 4 coders, 12 units, values 1-5, with missing data
    nan = np.nan
    data = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
                     [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]])
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(data, "interval") == pytest.approx(0.849, abs=5e-4)


def test_krippendorff_undefined_and_bad_level():
    assert np.isnan(krippendorff_alpha(np.array([[1.0, 1.0], [1.0, 1.0]])))
    assert np.isnan(krippendorff_alpha(np.array([[1.0, 2.0], [np.nan, np.nan]])))
    with pytest.raises(ValidationError) as err:
        krippendorff_alpha(np.ones((2, 2)), "ratio")
    assert err.value.where == "level"


def test_bootstrap_vectorised_equals_loop_and_covers_estimate():
    rng = np.random.default_rng(3)
    counts = np.array([rng.multinomial(4, p) for p in rng.dirichlet(np.ones(3), size=150)])
    loop = bootstrap_ci(lambda idx: krippendorff_alpha_from_counts(counts[idx]), 150,
                        n_boot=200, seed=11)
    fast = alpha_bootstrap_ci(counts, n_boot=200, seed=11)
    assert fast == pytest.approx(loop, abs=1e-9)
    point = krippendorff_alpha_from_counts(counts)
    assert fast[0] < point < fast[1]
    assert alpha_bootstrap_ci(counts, n_boot=200, seed=11) == fast  # deterministic


def test_bootstrap_ci_validates():
    with pytest.raises(ValidationError):
        bootstrap_ci(np.mean, 0)
    with pytest.raises(ValidationError):
        bootstrap_ci(np.mean, 10, confidence=1.5)
    low, high = bootstrap_ci(lambda idx: float("nan"), 10, n_boot=20)
    assert np.isnan(low) and np.isnan(high)


def test_batch_agreement_figures():
    votes = [
        [("ann", "cat"), ("bob", "cat"), ("cy", "cat")],
        [("ann", "dog"), ("bob", "dog"), ("cy", "cat")],
        [("ann", "dog"), ("bob", "dog")],
        [("ann", "cat"), ("bob", "dog"), ("cy", "dog")],
        [("ann", "bird")],  # one vote: not overlapped, left out
        [("bob", "bird"), ("cy", "bird")],
    ]
    report = batch_agreement(votes, ["cat", "dog", "bird"], n_boot=200)
    assert report.n_items == 5 and report.n_votes == 13
    # agreeing pairs per item: 3/3, 1/3, 1/1, 1/3, 1/1
    assert report.percent_agreement == pytest.approx((1 + 1 / 3 + 1 + 1 / 3 + 1) / 5)
    reliability = np.full((3, 5), np.nan)
    code = {"cat": 0.0, "dog": 1.0, "bird": 2.0}
    for j, item in enumerate([v for v in votes if len(v) >= 2]):
        for ann, lab in item:
            reliability[["ann", "bob", "cy"].index(ann), j] = code[lab]
    assert report.krippendorff_alpha == pytest.approx(
        krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal"))
    ann_bob = next(p for p in report.pairwise if {p["a"], p["b"]} == {"ann", "bob"})
    assert ann_bob["n"] == 4
    assert ann_bob["kappa"] == pytest.approx(cohen_kappa(["cat", "dog", "dog", "cat"],
                                                         ["cat", "dog", "dog", "dog"]))
    assert report.cohen_kappa == pytest.approx(np.mean([p["kappa"] for p in report.pairwise]))
    assert report.per_label["bird"] == pytest.approx(1.0)  # bird: always unanimous
    assert report.alpha_ci[0] <= report.krippendorff_alpha <= report.alpha_ci[1]
    json.dumps(report.to_dict(), allow_nan=False)


def test_batch_agreement_degenerate_input_gives_none_not_nan():
    same = [[("a", "x"), ("b", "x")], [("a", "x"), ("b", "x")], [("a", "x"), ("c", "x")]]
    report = batch_agreement(same, ["x", "y"])
    assert report.percent_agreement == 1.0
    assert report.cohen_kappa is None and report.fleiss_kappa is None
    assert report.krippendorff_alpha is None and report.alpha_ci is None
    assert report.pairwise == [{"a": "a", "b": "b", "n": 2, "kappa": None}]
    json.dumps(report.to_dict(), allow_nan=False)

    one = batch_agreement([[("a", "x"), ("b", "y")], [("a", "x")]], ["x", "y"])
    assert one.n_items == 1 and one.percent_agreement == 0.0
    assert one.krippendorff_alpha is None and one.per_label == {"x": None, "y": None}

    empty = batch_agreement([], ["x", "y"])
    assert empty.n_items == 0 and empty.percent_agreement is None and empty.pairwise == []
    json.dumps(empty.to_dict(), allow_nan=False)


def test_batch_agreement_rejects_bad_votes():
    with pytest.raises(ValidationError) as err:
        batch_agreement([[("a", "x"), ("b", "zebra")]], ["x", "y"])
    assert err.value.where == "votes[0][1]"
    with pytest.raises(ValidationError, match="twice"):
        batch_agreement([[("a", "x"), ("a", "y")]], ["x", "y"])


def test_batch_agreement_is_fast_on_a_large_batch():
    rng = np.random.default_rng(0)
    votes = [[(f"ann{a}", f"c{(i + (rng.random() < 0.2)) % 10}")
              for a in rng.choice(40, 5, replace=False)] for i in range(3000)]
    start = time.perf_counter()
    report = batch_agreement(votes, [f"c{j}" for j in range(10)], n_boot=500)
    assert time.perf_counter() - start < 5.0
    assert report.n_items == 3000 and len(report.pairwise) == 40 * 39 // 2
    assert 0.5 < report.krippendorff_alpha < 0.8
