"""The pre-labeler's recipe, chosen out of fold: it drops smoothing where smoothing hurts,
keeps it where it helps, and does not move on noise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from labelloop.core.errors import ValidationError
from labelloop.prelabel.recipe import (
    DEFAULT,
    Recipe,
    candidates,
    choose_recipe,
    fit_head,
    uniform_weights,
)
from labelloop.prelabel.smoothing import NeighbourSmoothing


def cross_topic(seed: int, n: int = 2000, topics: int = 40, classes: int = 6,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Classes that cut across topical clusters: each item's topic (40 clusters, far apart)
    decides its neighbours; its class is a small offset in 8 dimensions of its own, drawn
    independently of the topic. Neighbours are of every class, so smoothing mixes them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, 40)) * 8.0 / np.sqrt(40)
    offsets = rng.normal(size=(classes, 8))
    offsets /= np.linalg.norm(offsets, axis=1, keepdims=True)
    topic, y = rng.integers(0, topics, n), rng.integers(0, classes, n)
    x = np.hstack([centres[topic] + 0.3 * 8.0 * rng.normal(size=(n, 40)) / np.sqrt(40),
                   offsets[y] + 0.35 * rng.normal(size=(n, 8)) / np.sqrt(8)])
    return x.astype(np.float32), np.array([f"c{i}" for i in range(classes)])[y]


def topical(seed: int, n: int = 1500, classes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Classes that are topics: each class a cluster, each item a noisy draw from it, so an
    item's neighbours mostly share its class and averaging them removes noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.integers(0, classes, n)
    x = centres[y] + 0.45 * rng.normal(size=(n, 32))
    return x.astype(np.float32), np.array([f"t{i}" for i in range(classes)])[y]


def held_out_f1(x: np.ndarray, y: np.ndarray, labeled: np.ndarray, recipe: Recipe,
                smoothing: NeighbourSmoothing) -> float:
    rest = np.setdiff1d(np.arange(len(y)), labeled)
    head = fit_head(sorted(set(y)), x[labeled], y[labeled], recipe, smoothing)
    pred = np.array(head.labels)[head.predict_proba(x[rest]).argmax(axis=1)]
    return float(f1_score(y[rest], pred, average="macro"))


def labeled_set(x: np.ndarray, y: np.ndarray, seed: int) -> tuple:
    """(smoothing over all of x, 300 labeled rows, held-out F1 of the plain classifier,
    held-out F1 of the default smoothed one)."""
    smoothing = NeighbourSmoothing(x, k=10)
    labeled = np.random.default_rng(seed).choice(len(y), 300, replace=False)
    plain, smoothed = (held_out_f1(x, y, labeled, r, smoothing) for r in (Recipe(0), DEFAULT))
    return smoothing, labeled, plain, smoothed


@pytest.mark.parametrize("seed", [0, 1])
def test_falls_back_to_the_plain_classifier_where_smoothing_hurts(seed: int) -> None:
    x, y = cross_topic(seed)
    # The set does what it is built for: on the items nobody labeled, smoothing loses.
    smoothing, labeled, plain, smoothed = labeled_set(x, y, seed)
    assert plain > smoothed + 0.05
    choice = choose_recipe(x[labeled], y[labeled], smoothing, incumbent=DEFAULT)
    assert choice.recipe.smoothing_k == 0
    assert choice.reason == "switched" and choice.gain > choice.stderr > 0
    assert choice.scores[choice.recipe.key] == max(choice.scores.values())
    assert held_out_f1(x, y, labeled, choice.recipe, smoothing) > smoothed + 0.05


@pytest.mark.parametrize("seed", [0, 1])
def test_keeps_smoothing_where_smoothing_helps(seed: int) -> None:
    x, y = topical(seed)
    smoothing, labeled, plain, smoothed = labeled_set(x, y, seed)
    assert smoothed > plain + 0.02
    kept = choose_recipe(x[labeled], y[labeled], smoothing, incumbent=DEFAULT)
    assert kept.recipe.smoothing_k > 0
    # Starting from the plain classifier, the labels move it to smoothing.
    moved = choose_recipe(x[labeled], y[labeled], smoothing, incumbent=Recipe(0))
    assert moved.recipe.smoothing_k > 0 and moved.reason == "switched"
    assert moved.scores[Recipe(0).key] < moved.scores[moved.recipe.key]


def test_few_labels_keep_the_incumbent_unscored() -> None:
    x, y = cross_topic(0)
    smoothing = NeighbourSmoothing(x, k=10)
    choice = choose_recipe(x[:30], y[:30], smoothing, incumbent=DEFAULT)
    assert (choice.recipe, choice.reason, choice.scores) == (DEFAULT, "few labels", {})


def test_does_not_switch_on_noise() -> None:
    """Labels that carry no signal: every recipe scores at chance and whichever scores
    highest does so by luck, within the paired noise: the incumbent stays."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 16)).astype(np.float32)
    y = rng.choice(["a", "b", "c"], 600)
    for incumbent in (DEFAULT, Recipe(0, 1.0)):
        choice = choose_recipe(x[:200], y[:200], NeighbourSmoothing(x, k=10),
                               incumbent=incumbent)
        assert choice.recipe == incumbent and choice.reason == "kept"
        # Every k at the incumbent's C, then the other Cs at the best k.
        assert len(choice.scores) == 4 + 2


def test_the_grid_follows_what_the_caller_fixed_and_the_index_allows() -> None:
    x, _ = topical(0, n=50)
    small = NeighbourSmoothing(x[:12], k=5)  # 12 references: k=20 cannot be read
    assert {r.smoothing_k for r in candidates(small)} == {0, 5, 10}
    assert {r.smoothing_k for r in candidates(None)} == {0}
    assert {r.c for r in candidates(small, c=3.0)} == {3.0}
    # An incumbent that needs a smoothing there is none of becomes the plain classifier.
    x, y = topical(1, n=200)
    choice = choose_recipe(x, y, None, incumbent=DEFAULT, c=3.0)
    assert choice.incumbent == Recipe(0, 3.0)
    assert all(Recipe.from_key(k).c == 3.0 for k in choice.scores)


def test_uniform_rows_weigh_as_the_pool_they_stand_for() -> None:
    weights = uniform_weights(np.r_[np.ones(10, bool), np.zeros(90, bool)])
    assert weights[:10].tolist() == [5.0] * 10 and weights[10:].tolist() == [1.0] * 90
    assert uniform_weights(np.r_[np.ones(50, bool), np.zeros(50, bool)]).tolist() == [1.0] * 100
    assert uniform_weights(np.ones(4, bool)).tolist() == [1.0] * 4


def test_bad_rows_are_refused() -> None:
    with pytest.raises(ValidationError, match="do not match"):
        choose_recipe(np.zeros((5, 3)), ["a"] * 4, None)
    with pytest.raises(ValidationError, match="1 <= k"):
        NeighbourSmoothing(np.eye(6, dtype=np.float32), k=2).with_k(6)


def test_a_recipe_key_round_trips_and_with_k_shares_the_index() -> None:
    assert Recipe.from_key(Recipe(20, 100.0).key) == Recipe(20, 100.0)
    x, _ = topical(0, n=100)
    smoothing = NeighbourSmoothing(x, k=10)
    five = smoothing.with_k(5)
    assert five.k == 5 and five._index is smoothing._index and smoothing.k == 10
    np.testing.assert_allclose(five.transform(x[:4]), NeighbourSmoothing(x, k=5).transform(x[:4]),
                               atol=1e-6)


def test_macro_f1_is_sklearns_weighted_macro_f1() -> None:
    rng = np.random.default_rng(0)
    y, pred = rng.choice(list("abcd"), 300), rng.choice(list("abcde"), 300)
    weight = rng.uniform(0.5, 5, 300)
    from labelloop.prelabel.recipe import macro_f1

    want = f1_score(y, pred, labels=np.unique(y), average="macro", sample_weight=weight,
                    zero_division=0)
    assert macro_f1(y, pred, weight) == pytest.approx(want, abs=1e-12)
