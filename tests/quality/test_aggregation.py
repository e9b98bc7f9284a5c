from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene, MajorityVote, OneCoinDawidSkene

from labelloop.core.errors import ValidationError
from labelloop.quality.aggregation import (
    AGGREGATORS,
    aggregate,
    dawid_skene,
    majority_vote,
    one_coin,
)

CIFAR10H = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10h"
            / "cifar10h-counts.npy")


def simulate_crowd(truth_dist, n_annotators, per_item, seed, *, spammers=(), biased=None,
                   accuracy=None):
    """Votes from a pool: each item gets ``per_item`` distinct annotators.

    ``truth_dist`` (n_items, k): an honest annotator's label distribution per item.
    ``spammers``: annotator ids answering uniformly at random. ``biased``: {annotator:
    {a: b}}: that annotator answers b whenever the honest answer would be a.
    ``accuracy``: {annotator: p}: answer the argmax of truth_dist with prob p, else random.
    """
    rng = np.random.default_rng(seed)
    n_items, k = truth_dist.shape
    item = np.repeat(np.arange(n_items), per_item)
    annotator = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :per_item].ravel()
    cum = np.cumsum(truth_dist[item], axis=1)
    label = (rng.random(item.size)[:, None] > cum).sum(axis=1).clip(max=k - 1)
    for a, p in (accuracy or {}).items():
        mine = annotator == a
        right = rng.random(mine.sum()) < p
        label[mine] = np.where(right, truth_dist[item[mine]].argmax(axis=1),
                               rng.integers(0, k, mine.sum()))
    for a, swaps in (biased or {}).items():
        mine = annotator == a
        honest = label[mine].copy()
        for src, dst in swaps.items():
            label[np.nonzero(mine)[0][honest == src]] = dst
    for a in spammers:
        mine = annotator == a
        label[mine] = rng.integers(0, k, mine.sum())
    return item, annotator, label


def synthetic_crowd(seed=0, n_items=400, k=4):
    """8 good annotators (75% accurate), 3 spammers, 3 biased (0->1, 1->2 always)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    onehot = np.eye(k)[truth]
    biased = {a: {0: 1, 1: 2 % k} for a in (11, 12, 13)}
    item, annotator, label = simulate_crowd(onehot, 14, 5, seed, spammers=(8, 9, 10),
                                            biased=biased, accuracy={a: 0.75 for a in range(8)})
    return item, annotator, label, truth


def as_frame(item, annotator, label):
    return pd.DataFrame({"task": item, "worker": annotator, "label": label})


def crowdkit_probas(model, n_items, k):
    return model.probas_.reindex(index=range(n_items), columns=range(k)).fillna(0.0).to_numpy()


def test_dawid_skene_matches_crowdkit_iteration_for_iteration():
    item, annotator, label, _ = synthetic_crowd(seed=1, n_items=150)
    theirs = DawidSkene(n_iter=100).fit(as_frame(item, annotator, label))
    ours = dawid_skene(item, annotator, label, 150, 4, max_iter=len(theirs.loss_history_),
                       tol=0.0, smoothing=1e-10)
    np.testing.assert_allclose(ours.posterior, crowdkit_probas(theirs, 150, 4), atol=1e-6)
    # with the default smoothing and stopping rule the labels still (nearly) agree
    default = dawid_skene(item, annotator, label, 150, 4)
    assert np.mean(default.labels == theirs.labels_.sort_index().to_numpy()) >= 0.98


def test_one_coin_matches_crowdkit_iteration_for_iteration():
    item, annotator, label, _ = synthetic_crowd(seed=2)
    theirs = OneCoinDawidSkene(n_iter=100).fit(as_frame(item, annotator, label))
    ours = one_coin(item, annotator, label, 400, 4, max_iter=len(theirs.loss_history_),
                    smoothing=1e-12)
    np.testing.assert_allclose(ours.posterior, crowdkit_probas(theirs, 400, 4), atol=1e-9)
    np.testing.assert_allclose(ours.annotator_quality, theirs.skills_.sort_index(), atol=1e-9)


def test_majority_matches_crowdkit_without_ties():
    item, annotator, label, _ = synthetic_crowd(seed=3, k=2)  # 5 votes, 2 classes: no ties
    ours = majority_vote(item, annotator, label, 400, 2)
    theirs = MajorityVote().fit(as_frame(item, annotator, label))
    np.testing.assert_allclose(ours.posterior, crowdkit_probas(theirs, 400, 2))
    assert (ours.labels == theirs.labels_.sort_index().to_numpy()).all()
    np.testing.assert_allclose(ours.annotator_quality, theirs.skills_.sort_index())


def toy_ysda():
    """crowd-kit's own toy YSDA example (tests/conftest.py): 5 tasks, 5 workers."""
    rows = [("w1", 1, "no"), ("w1", 2, "yes"), ("w1", 3, "yes"), ("w1", 4, "yes"),
            ("w1", 5, "yes"), ("w2", 1, "yes"), ("w2", 2, "yes"), ("w2", 3, "no"),
            ("w2", 4, "yes"), ("w2", 5, "no"), ("w3", 2, "yes"), ("w3", 3, "no"),
            ("w3", 4, "yes"), ("w3", 5, "no"), ("w4", 1, "yes"), ("w4", 2, "no"),
            ("w4", 3, "yes"), ("w4", 4, "yes"), ("w4", 5, "no"), ("w5", 1, "no"),
            ("w5", 2, "no"), ("w5", 3, "no"), ("w5", 4, "yes"), ("w5", 5, "no")]
    annotator = np.array([int(w[1]) - 1 for w, _, _ in rows])
    item = np.array([t - 1 for _, t, _ in rows])
    label = np.array([["no", "yes"].index(lb) for _, _, lb in rows])
    return item, annotator, label, np.array([1, 1, 0, 1, 0])  # truth: yes yes no yes no


@pytest.mark.parametrize("method", ["dawid-skene", "one-coin"])
def test_crowdkit_toy_ysda_ground_truth(method):
    item, annotator, label, truth = toy_ysda()
    assert (aggregate(method, item, annotator, label, 5, 2).labels == truth).all()


def test_dawid_skene_one_step_matches_crowdkit_worked_example():
    # crowd-kit tests/aggregation/test_ds_aggregation.py, ``probas_iter_1`` (2 decimals)
    item, annotator, label, _ = toy_ysda()
    keep = ~((annotator == 2) & (item == 0))  # that example has no answer of w3 on t1
    result = dawid_skene(item[keep], annotator[keep], label[keep], 5, 2, max_iter=1,
                         smoothing=1e-10)
    expected = [[0.35, 0.65], [0.26, 0.74], [0.87, 0.13], [0.0, 1.0], [0.95, 0.05]]
    np.testing.assert_allclose(result.posterior, expected, atol=0.006)


def test_dawid_skene_beats_majority_with_spammers_and_biased_annotators():
    for seed in range(3):
        item, annotator, label, truth = synthetic_crowd(seed=seed)
        mv = majority_vote(item, annotator, label, 400, 4).labels
        ds = dawid_skene(item, annotator, label, 400, 4)
        assert np.mean(ds.labels == truth) > np.mean(mv == truth) + 0.05
        # spammers (8-10) and biased (11-13) are rated below the good annotators
        assert ds.annotator_quality[8:].max() < ds.annotator_quality[:8].min()


def test_one_coin_spots_spammers():
    item, annotator, label, truth = synthetic_crowd(seed=4)
    oc = one_coin(item, annotator, label, 400, 4)
    assert oc.annotator_quality[8:11].max() < 0.4 < oc.annotator_quality[:8].min()
    assert np.mean(oc.labels == truth) > np.mean(
        majority_vote(item, annotator, label, 400, 4).labels == truth)


def test_cifar10h_simulated_pool():
    if not CIFAR10H.exists():
        pytest.skip(f"CIFAR-10H counts not found at {CIFAR10H} (needs ../shared/data)")
    counts = np.load(CIFAR10H)[:2000]
    dist = counts / counts.sum(axis=1, keepdims=True)
    reference = counts.argmax(axis=1)
    cat, dog, car, truck = 3, 5, 1, 9
    item, annotator, label = simulate_crowd(
        dist, 30, 5, seed=0, spammers=range(20, 26),
        biased={a: {cat: dog, dog: cat, car: truck} for a in range(26, 30)})
    mv = np.mean(majority_vote(item, annotator, label, 2000, 10).labels == reference)
    ds = np.mean(dawid_skene(item, annotator, label, 2000, 10).labels == reference)
    oc = np.mean(one_coin(item, annotator, label, 2000, 10).labels == reference)
    assert ds > mv
    assert oc > mv
    assert ds > 0.9


def test_items_without_votes_and_ties():
    item, annotator, label = np.array([0, 0, 2, 2]), np.array([0, 1, 0, 1]), np.array([0, 1, 1, 1])
    for method in AGGREGATORS:
        result = aggregate(method, item, annotator, label, 4, 3)
        assert result.labels[1] == -1 and result.labels[3] == -1
        np.testing.assert_allclose(result.posterior[[1, 3]], 1 / 3)
        np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0)
        assert result.labels[2] == 1
        assert result.method == method
    tie_labels = {int(majority_vote(item, annotator, label, 4, 3, seed=s).labels[0])
                  for s in range(20)}
    assert tie_labels == {0, 1}  # the 0-vs-1 tie on item 0 goes both ways across seeds
    again = majority_vote(item, annotator, label, 4, 3, seed=5).labels
    assert (again == majority_vote(item, annotator, label, 4, 3, seed=5).labels).all()


def test_no_votes_at_all():
    empty = np.array([], dtype=int)
    for method in AGGREGATORS:
        result = aggregate(method, empty, empty, empty, 3, 2)
        assert (result.labels == -1).all() and result.annotator_quality.shape == (0,)


def test_bad_input_is_named():
    ok = np.array([0, 1])
    with pytest.raises(ValidationError, match="unknown aggregation"):
        aggregate("median", ok, ok, ok, 2, 2)
    with pytest.raises(ValidationError) as err:
        majority_vote(ok, ok, np.array([0, 5]), 2, 2)
    assert err.value.where == "label[1]"
    with pytest.raises(ValidationError):
        dawid_skene(ok, ok, np.array([0]), 2, 2)
    with pytest.raises(ValidationError):
        one_coin(ok, ok, np.array([0.0, 1.0]), 2, 2)


def test_sparse_batches_fall_back_from_dawid_skene():
    from labelloop.quality.aggregation import aggregate, supported_method

    assert supported_method("dawid-skene", 200, 77, 3) == "one-coin"
    assert supported_method("dawid-skene", 5000, 4, 3) == "dawid-skene"
    assert supported_method("dawid-skene", 5000, 4, 1) == "majority"
    # 200 single-vote items over 77 classes (the demo's first batch): every vote must survive.
    rng = np.random.default_rng(0)
    n, k = 200, 77
    truth = rng.integers(0, k, n)
    truth[:120] = 5  # one frequent class, as after a skewed batch
    item = np.arange(n)
    annotator = rng.integers(0, 3, n)
    method = supported_method("dawid-skene", n, k, 3)
    agg = aggregate(method, item, annotator, truth, n, k)
    assert np.array_equal(agg.labels, truth)
