import time

import numpy as np
import pytest

from labelloop.core.errors import ValidationError
from labelloop.quality.drift import detect_drift

LABELS = ["PER", "ORG", "LOC", "MISC"]
VETERANS = [f"vet{i}" for i in range(1, 6)]
NEWCOMERS = ["new1", "new2", "new3"]


def ner_history(seed=0, drift=True, votes_per_batch=250):
    """Three months of weekly NER batches ("2024-01-w1" ...).

    Veterans agree with consensus 92% of the time. With ``drift``, month 3 brings
    guideline v2 (which redefines MISC: everyone's MISC agreement falls to 60%) and a
    new cohort agreeing 70% of the time on every label. One vote in five is on a gold
    item, where ``correct`` follows the same pattern.
    """
    rng = np.random.default_rng(seed)
    records = []
    for month in (1, 2, 3):
        changed = drift and month == 3
        people = VETERANS + (NEWCOMERS if changed else [])
        for week in (1, 2, 3, 4):
            batch = f"2024-0{month}-w{week}"
            for annotator in people:
                labels = rng.choice(LABELS, votes_per_batch, p=[0.3, 0.3, 0.32, 0.08])
                for label in labels:
                    p = 0.70 if annotator in NEWCOMERS else 0.92
                    if changed and label == "MISC":
                        p = 0.60
                    gold = rng.random() < 0.2
                    records.append({
                        "batch": batch, "annotator": annotator, "label": str(label),
                        "guideline_version": "v2" if changed else "v1",
                        "correct": bool(rng.random() < p + 0.03) if gold else None,
                        "agrees_with_consensus": bool(rng.random() < p),
                    })
    return records


BASELINE = [f"2024-0{m}-w{w}" for m in (1, 2) for w in (1, 2, 3, 4)]


def named(causes, kind):
    return {c.split(":")[0].split()[1] for c in causes if c.startswith(kind + " ")}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_new_cohort_and_guideline_change_are_named(seed):
    findings = detect_drift(ner_history(seed), BASELINE)
    assert [f.metric for f in findings] == ["agreement", "gold_accuracy"]
    agreement = findings[0]
    assert agreement.baseline == pytest.approx(0.92, abs=0.01)
    assert agreement.drop == pytest.approx(agreement.baseline - agreement.current)
    assert agreement.drop > 0.05
    # on 1000 votes each, the newcomers are exactly the annotators named
    assert named(agreement.causes, "annotator") == set(NEWCOMERS)
    for finding in findings:
        # gold items are fewer: a veteran may also be named, but ranks below the newcomers
        first = [c.split(":")[0].split()[1] for c in finding.causes if c.startswith("annotator")]
        assert set(first[:3]) == set(NEWCOMERS)
        assert named(finding.causes, "label") == {"MISC"}
        assert [c for c in finding.causes if c.startswith("guideline_version changed: v1 -> v2")]
        assert all("(new)" in c for c in finding.causes if c.startswith("annotator new"))
    assert agreement.message.startswith("agreement fell from 0.92 to 0.8")
    assert "likely causes: " in agreement.message
    assert agreement.n_current == 4 * 8 * 250


def test_causes_are_ranked_by_contribution():
    for finding in detect_drift(ner_history(0), BASELINE):
        shares = [float(c.rsplit("accounts for ", 1)[1].split()[0]) for c in finding.causes]
        assert shares == sorted(shares, reverse=True)
        assert 0 < sum(shares[:3]) <= 1.5 * finding.drop


def test_no_drift_no_finding():
    assert detect_drift(ner_history(0, drift=False), BASELINE) == []


def test_too_few_votes_are_not_judged():
    records = ner_history(0, votes_per_batch=3)
    assert detect_drift(records, BASELINE, min_count=10_000) == []


def test_explicit_current_window():
    records = ner_history(0)
    findings = detect_drift(records, BASELINE[:4], current_batches=BASELINE[4:])
    assert findings == []  # months 1 and 2 are alike
    with pytest.raises(ValidationError):
        detect_drift(records, BASELINE, current_batches=BASELINE[-1:])


def test_bad_records_are_named():
    with pytest.raises(ValidationError) as err:
        detect_drift([{"batch": 1, "annotator": "a"}], [1])
    assert err.value.where == "records[0].label"
    with pytest.raises(ValidationError):
        detect_drift([{"batch": 1, "annotator": "a", "label": "x", "correct": "yes"}], [1])
    with pytest.raises(ValidationError):
        detect_drift([], [])


def test_fast_enough_for_a_year_of_batches():
    records = ner_history(0) * 4
    start = time.perf_counter()
    detect_drift(records, BASELINE)
    assert time.perf_counter() - start < 3.0
