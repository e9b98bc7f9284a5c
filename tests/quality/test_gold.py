import pytest
from statsmodels.stats.proportion import proportion_confint

from labelloop.core.errors import ValidationError
from labelloop.quality.gold import flag_for_recalibration, gold_scorecard, wilson_interval

LABELS = ["PER", "ORG", "LOC"]


def answers():
    # ann: 9/10 right; bob: 4/10 right, confuses ORG -> LOC; cy: 2 answers only, both wrong
    rows = [("ann", "PER", "PER")] * 4 + [("ann", "ORG", "ORG")] * 3 + \
        [("ann", "LOC", "LOC")] * 2 + [("ann", "PER", "ORG")]
    rows += [("bob", "PER", "PER")] * 4 + [("bob", "LOC", "ORG")] * 6
    rows += [("cy", "LOC", "PER"), ("cy", "ORG", "PER")]
    annotators, labels, gold = zip(*rows, strict=True)
    return list(annotators), list(labels), list(gold)


def test_scorecard_counts_accuracy_and_confusion():
    scores = gold_scorecard(*answers(), LABELS)
    assert list(scores) == ["ann", "bob", "cy"]
    bob = scores["bob"]
    assert (bob.n, bob.correct, bob.accuracy) == (10, 4, 0.4)
    assert bob.confusion["ORG"] == {"PER": 0, "ORG": 0, "LOC": 6}
    assert bob.confusion["LOC"] == {"PER": 0, "ORG": 0, "LOC": 0}
    assert scores["ann"].confusion["ORG"]["PER"] == 1


def test_wilson_interval_matches_statsmodels():
    for k, n in [(9, 10), (4, 10), (0, 7), (50, 50), (33, 120)]:
        expected = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert wilson_interval(k, n) == pytest.approx(expected, abs=1e-12)
    scores = gold_scorecard(*answers(), LABELS)
    assert (scores["ann"].ci_low, scores["ann"].ci_high) == pytest.approx(
        proportion_confint(9, 10, method="wilson"))
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_flag_for_recalibration_needs_enough_answers():
    scores = gold_scorecard(*answers(), LABELS)
    assert flag_for_recalibration(scores, min_accuracy=0.8) == ["bob"]  # cy: only 2 answers
    assert flag_for_recalibration(scores, min_accuracy=0.8, min_count=2) == ["cy", "bob"]
    assert flag_for_recalibration(scores, min_accuracy=0.3) == []
    with pytest.raises(ValidationError):
        flag_for_recalibration(scores, min_accuracy=80)


def test_bad_input_is_named():
    with pytest.raises(ValidationError) as err:
        gold_scorecard(["a", "a"], ["PER", "GPE"], ["PER", "PER"], LABELS)
    assert err.value.where == "labels[1]"
    with pytest.raises(ValidationError):
        gold_scorecard(["a"], ["PER", "PER"], ["PER"], LABELS)
