import numpy as np
import pytest
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from sklearn.datasets import make_classification

from labelloop.core.errors import ValidationError
from labelloop.quality.label_errors import (
    confident_joint,
    find_label_issues,
    label_quality,
    out_of_fold_probs,
)


def noisy_dataset(seed, n=1500, k=4, noise=0.1):
    x, y = make_classification(n_samples=n, n_features=20, n_informative=8, n_classes=k,
                               n_clusters_per_class=1, class_sep=1.5, random_state=seed)
    rng = np.random.default_rng(seed)
    flipped = rng.random(n) < noise
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, k, flipped.sum())) % k
    return x, noisy, np.nonzero(flipped)[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_cleanlab_and_finds_flipped_labels(seed):
    x, noisy, flipped = noisy_dataset(seed)
    probs = out_of_fold_probs(x, noisy, seed=seed)
    ours = find_label_issues(noisy, probs)
    theirs = cleanlab_find_label_issues(noisy, probs, return_indices_ranked_by="self_confidence",
                                        n_jobs=1)
    jaccard = len(set(ours) & set(theirs)) / len(set(ours) | set(theirs))
    assert jaccard >= 0.8
    precision = np.isin(ours, flipped).mean()
    recall = np.isin(flipped, ours).mean()
    assert recall > 0.7 and precision > 0.6  # a random pick of as many would get ~0.1
    # most suspect first: self-confidence never decreases along the ranking
    conf = probs[ours, noisy[ours]]
    assert (np.diff(conf) >= 0).all()


def test_normalized_margin_ranking():
    x, noisy, _ = noisy_dataset(2, n=600)
    probs = out_of_fold_probs(x, noisy, n_folds=3)
    ranked = find_label_issues(noisy, probs, rank_by="normalized_margin")
    assert set(ranked) == set(find_label_issues(noisy, probs))
    assert (np.diff(label_quality(noisy[ranked], probs[ranked], "normalized_margin")) >= 0).all()


def test_confident_joint_rows_sum_to_given_label_counts():
    x, noisy, _ = noisy_dataset(3, n=800)
    probs = out_of_fold_probs(x, noisy, n_folds=3)
    cj = confident_joint(noisy, probs)
    assert (cj.sum(axis=1) == np.bincount(noisy, minlength=4)).all()
    assert np.trace(cj) > 0.8 * cj.sum()


def test_tiny_example_and_every_class_keeps_an_example():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8], [.1, .9], [.3, .7]])
    assert find_label_issues(labels, probs).tolist() == [2]
    # a class whose only example looks wrong keeps it
    lonely = find_label_issues(np.array([0, 0, 1]), np.array([[.9, .1], [.8, .2], [.9, .1]]))
    assert lonely.tolist() == []


def test_bad_input_is_named():
    with pytest.raises(ValidationError):
        find_label_issues(np.array([0, 2]), np.array([[.5, .5], [.5, .5]]))
    with pytest.raises(ValidationError):
        find_label_issues(np.array([0, 1]), np.array([[.5, .9], [.5, .5]]))
    with pytest.raises(ValidationError) as err:
        find_label_issues(np.array([0, 1]), np.array([[.5, .5], [.5, .5]]), rank_by="loss")
    assert err.value.where == "rank_by"
    with pytest.raises(ValidationError):
        out_of_fold_probs(np.ones((3, 2)), np.array([0, 1]))
