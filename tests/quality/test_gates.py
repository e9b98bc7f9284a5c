import numpy as np
import pytest

from labelloop.core.errors import ValidationError
from labelloop.quality.agreement import batch_agreement
from labelloop.quality.gates import QualityGate, evaluate_gate

GATE = QualityGate(min_alpha=0.6, min_kappa=0.5, min_gold_accuracy=0.9, max_error_rate=0.1)


def test_passing_batch():
    figures = {"krippendorff_alpha": 0.8, "cohen_kappa": 0.7, "gold_accuracy": 0.95,
               "label_error_rate": 0.02, "n_items": 40}
    decision = evaluate_gate(figures, GATE)
    assert decision.passed and decision.reasons == []
    assert decision.figures["krippendorff_alpha"] == 0.8


def test_every_failed_bar_is_named_with_value_and_bar():
    figures = {"krippendorff_alpha": 0.41, "cohen_kappa": 0.3, "gold_accuracy": 0.85,
               "label_error_rate": 0.2, "n_items": 1}
    decision = evaluate_gate(figures, GATE)
    assert not decision.passed
    assert decision.reasons == ["gold_accuracy 0.85 < 0.90", "label_error_rate 0.20 > 0.10"]
    figures["n_items"] = 40
    assert evaluate_gate(figures, GATE).reasons == [
        "krippendorff_alpha 0.41 < 0.60", "cohen_kappa 0.30 < 0.50",
        "gold_accuracy 0.85 < 0.90", "label_error_rate 0.20 > 0.10"]


def test_missing_figures_fail_only_when_required():
    figures = {"krippendorff_alpha": None, "cohen_kappa": 0.7, "n_items": 30}
    assert evaluate_gate(figures, GATE).passed
    strict = QualityGate(min_alpha=0.6, min_gold_accuracy=0.9,
                         required=("krippendorff_alpha", "gold_accuracy"))
    decision = evaluate_gate(figures, strict)
    assert decision.reasons == ["krippendorff_alpha missing (required)",
                                "gold_accuracy missing (required)"]
    assert evaluate_gate({"krippendorff_alpha": float("nan")}, GATE).passed  # nan = undefined


def test_agreement_on_too_few_shared_items_is_not_judged():
    gate = QualityGate(min_alpha=0.6, min_overlap_items=10)
    assert evaluate_gate({"krippendorff_alpha": 0.1, "n_items": 3}, gate).passed
    assert not evaluate_gate({"krippendorff_alpha": 0.1, "n_items": 10}, gate).passed
    strict = QualityGate(min_alpha=0.6, required=("krippendorff_alpha",))
    decision = evaluate_gate({"krippendorff_alpha": 0.9, "n_items": 1}, strict)
    assert decision.reasons == ["krippendorff_alpha missing (required; n_items 1 < 2)"]
    assert decision.figures["krippendorff_alpha"] == 0.9  # reported as measured


def test_reads_the_stored_agreement_report():
    rng = np.random.default_rng(0)
    votes = [[(a, "x" if rng.random() < 0.5 else "y") for a in ("p", "q", "r")]
             for _ in range(30)]
    report = batch_agreement(votes, ["x", "y"], n_boot=50)
    figures = {"agreement": report.to_dict(), "krippendorff_alpha": report.krippendorff_alpha}
    decision = evaluate_gate(figures, QualityGate(min_alpha=0.6, min_kappa=0.6))
    assert not decision.passed
    assert decision.figures["n_items"] == 30
    assert decision.reasons[0].startswith("krippendorff_alpha ")
    assert decision.reasons[1].startswith("cohen_kappa ")
    assert decision.to_dict()["passed"] is False


def test_bad_gates_and_figures_are_named():
    with pytest.raises(ValidationError) as err:
        QualityGate(min_alpha=1.5)
    assert err.value.where == "min_alpha"
    with pytest.raises(ValidationError):
        QualityGate(required=("accuracy",))
    with pytest.raises(ValidationError):
        evaluate_gate({"krippendorff_alpha": "high"}, GATE)
