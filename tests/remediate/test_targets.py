"""The pure findings: F1 drops and confusion rises that adapt to the support, slices found
by a corrected Fisher test, and the recovery checks that close targets."""

import numpy as np

from labelloop.remediate.targets import (
    class_boost,
    confusion_recovered,
    confusion_rises,
    f1_drops,
    f1_recovered,
    slice_findings,
)


def _metrics(f1: dict[str, float], support: int, confusions=()) -> dict:  # noqa: ANN001
    return {"per_class": {lb: {"f1": v, "support": support} for lb, v in f1.items()},
            "confusions": [{"true": t, "predicted": p, "count": c} for t, p, c in confusions]}


def test_an_f1_drop_must_exceed_the_noise_of_its_support():
    before, after = {"a": 0.9, "b": 0.8}, {"a": 0.75, "b": 0.78}
    # 0.15 down on 1,000 items per class is a finding; on 10 items it is noise
    (drop,) = f1_drops(_metrics(after, 1000), _metrics(before, 1000))
    assert drop.labels == ("a",) and drop.baseline == 0.9 and abs(drop.figure - 0.15) < 1e-9
    assert f1_drops(_metrics(after, 10), _metrics(before, 10)) == []
    # a tiny drop never counts, however large the set
    assert f1_drops(_metrics({"a": 0.89}, 10**6), _metrics({"a": 0.9}, 10**6)) == []
    # recovery: back within the noise of the baseline, or not
    assert f1_recovered(_metrics({"a": 0.89}, 1000), "a", 0.9)
    assert not f1_recovered(_metrics({"a": 0.75}, 1000), "a", 0.9)
    assert not f1_recovered(_metrics({"b": 0.9}, 1000), "a", 0.9)  # class not evaluated


def test_a_confusion_counts_when_it_rises_beyond_poisson_noise():
    before = _metrics({}, 0, [("a", "b", 2), ("c", "d", 10)])
    after = _metrics({}, 0, [("a", "b", 20), ("c", "d", 13)])
    (rise,) = confusion_rises(after, before)
    assert rise.labels == ("a", "b") and rise.figure == 20 and rise.baseline == 2
    assert not confusion_recovered(after, ("a", "b"), 2)
    assert confusion_recovered(_metrics({}, 0, [("a", "b", 4)]), ("a", "b"), 2)
    assert confusion_recovered(_metrics({}, 0), ("a", "b"), 2)  # gone from the list


def test_a_deviant_slice_is_found_and_chance_is_not():
    rng = np.random.default_rng(0)
    n = 600
    annot = [("x",), ("y",), ("z",)] * (n // 3)
    labels = list(rng.choice(["a", "b", "c"], n))
    predicted = list(labels)
    for i in range(n):  # 5% disagreement everywhere, 60% for annotator z on class a
        if rng.random() < 0.05 or (annot[i] == ("z",) and labels[i] == "a"
                                    and rng.random() < 0.6):
            predicted[i] = "c" if labels[i] != "c" else "b"
    found = slice_findings({"annotator": annot}, {"annotator": predicted}, labels)
    assert [f.slice for f in found] == [{"attribute": "annotator", "value": "z"}]
    f = found[0]
    assert f.labels[:2] == ("a", "c") and f.evidence["p_value"] < 0.01
    assert all(annot[i] == ("z",) for i in f.evidence["rows"])
    # the same noise without the deviant: nothing
    clean = [lb if rng.random() > 0.05 else "b" for lb in labels]
    assert slice_findings({"annotator": annot}, {"annotator": clean}, labels) == []
    # one value is nothing to compare with
    assert slice_findings({"origin": [("human",)] * n}, {"origin": predicted}, labels) == []


def test_findings_become_boosts():
    before, after = _metrics({"a": 0.9}, 1000), _metrics({"a": 0.5}, 1000)
    assert class_boost(f1_drops(after, before), 3.0) == {"a": 3.0}


def test_a_pair_missing_from_a_truncated_list_is_not_taken_for_new():
    # an older model kept its top 10 pairs only: an unlisted pair may have been confused up
    # to the smallest listed count, so 6 against "unlisted" is no rise
    top10 = _metrics({}, 0, [(f"t{i}", f"p{i}", 8) for i in range(10)])
    assert confusion_rises(_metrics({}, 0, [("a", "b", 6)]), top10) == []
    assert confusion_rises(_metrics({}, 0, [("a", "b", 30)]), top10)[0].baseline == 8
    # with every pair kept, an absent pair was confused 0 times
    every = {"confusion_pairs": [["t0", "p0", 8]]}
    assert confusion_rises({"confusion_pairs": [["a", "b", 9]]}, every)[0].baseline == 0
