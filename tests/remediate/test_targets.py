from labelloop.remediate.targets import class_boost, findings


def test_weak_classes_and_confusions_become_boosts():
    metrics = {"macro_f1": 0.8,
               "per_class": {"a": {"f1": 0.95}, "b": {"f1": 0.5}, "c": {"f1": 0.85}},
               "confusions": [{"true": "b", "predicted": "c", "count": 7}]}
    found = findings(metrics)
    assert [f.kind for f in found] == ["weak-class", "confusion"]
    assert found[0].labels == ("b",) and "0.50" in found[0].message
    assert class_boost(found) == {"b": 2.0, "c": 2.0}
    assert findings({"macro_f1": 0.8, "per_class": {"a": {"f1": 0.8}}}) == []
