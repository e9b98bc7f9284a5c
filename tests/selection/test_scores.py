"""Pure score functions: values, rankings and shapes a strategy relies on."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.core.errors import ValidationError
from labelloop.selection import scores


def test_margin_ranks_the_smallest_top2_gap_first() -> None:
    probs = np.array([[0.6, 0.3, 0.1],     # gap 0.3
                      [0.4, 0.35, 0.25],   # gap 0.05: most uncertain
                      [0.98, 0.01, 0.01],  # gap 0.97
                      [0.1, 0.45, 0.45]])  # gap 0.0 at the top... tie of the two best
    assert np.argsort(-scores.margin(probs)).tolist() == [3, 1, 0, 2]
    assert scores.margin(probs)[3] == pytest.approx(1.0)


def test_entropy_is_largest_on_the_uniform_distribution() -> None:
    rng = np.random.default_rng(0)
    c = 7
    probs = np.vstack([np.full((1, c), 1 / c), rng.dirichlet(np.ones(c), size=200)])
    ent = scores.entropy(probs)
    assert ent.argmax() == 0
    assert ent[0] == pytest.approx(np.log(c))
    assert scores.entropy(np.eye(c)) == pytest.approx(np.zeros(c))  # 0 log 0 = 0, no NaN


def test_least_confidence_and_shapes() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.34, 0.33, 0.33]])
    assert scores.least_confidence(probs) == pytest.approx([0.3, 0.66])
    for fn in (scores.least_confidence, scores.margin, scores.entropy):
        assert fn(probs).shape == (2,)
        with pytest.raises(ValidationError):
            fn(np.array([0.5, 0.5]))


def test_bald_is_zero_when_passes_agree_and_positive_when_they_disagree() -> None:
    same = np.tile(np.array([[[0.7, 0.3]]]), (10, 1, 1))  # (t=10, n=1, c=2)
    assert scores.bald(same) == pytest.approx([0.0], abs=1e-9)
    flip = np.array([[[0.99, 0.01]], [[0.01, 0.99]]])  # confident but contradictory passes
    assert scores.bald(flip)[0] > 0.5
    with pytest.raises(ValidationError):
        scores.bald(np.ones((2, 2)))


def test_density_is_higher_inside_a_cluster_than_for_an_outlier() -> None:
    rng = np.random.default_rng(1)
    centre = rng.normal(size=16)
    cluster = centre + 0.05 * rng.normal(size=(30, 16))
    outlier = rng.normal(size=(1, 16))
    emb = np.vstack([cluster, outlier]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    dens = scores.density(emb, k=5)
    assert dens.shape == (31,)
    assert dens[:30].min() > dens[30]
    assert dens.max() < 1.0  # each item's own match (similarity 1) is left out
    ref = scores.density(emb[:3], k=5, reference=emb[3:30])
    assert ref.shape == (3,) and ref.min() > 0.9
