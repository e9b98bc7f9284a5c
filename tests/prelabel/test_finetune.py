"""SetFit fine-tuning: a loadable encoder version that pulls a class's texts together."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.core.errors import ValidationError
from labelloop.prelabel.encoders import load_encoder, resolve_model_path
from labelloop.prelabel.finetune import fine_tune
from tests.conftest import banking_rows

PAIR = ["card_arrival", "exchange_rate"]


def separation(x: np.ndarray, y: np.ndarray) -> float:
    """Mean cosine within classes minus mean cosine across them."""
    sims = x @ x.T
    same = y[:, None] == y[None, :]
    np.fill_diagonal(same, False)
    other = y[:, None] != y[None, :]
    return float(sims[same].mean() - sims[other].mean())


@pytest.mark.sqlite_only  # no database: once is enough
def test_a_fine_tuned_encoder_loads_like_any_local_model_and_separates_the_classes(tmp_path):
    rows = banking_rows("train", PAIR, 12)
    texts, y = [r["text"] for r in rows], np.array([r["category"] for r in rows])
    before = separation(load_encoder().encode(texts), y)
    out = fine_tune(texts, y, base=resolve_model_path("minilm"), out=tmp_path / "tuned",
                    max_steps=4, batch_size=8, device="cpu")
    assert (out / "config.json").is_file() and not list(tmp_path.glob(".*part"))
    tuned = load_encoder(str(out))
    after = tuned.encode(texts)
    assert after.shape == (24, 384)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    assert separation(after, y) > before + 0.02  # what contrastive pairs are for
    assert tuned.key != load_encoder().key  # its own encoder version, its own cache key


def test_one_class_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="two"):
        fine_tune(["a", "b"], ["x", "x"], base=resolve_model_path("minilm"), out=tmp_path / "t")
    assert not (tmp_path / "t").exists()


@pytest.mark.sqlite_only  # no database: once is enough
def test_the_holdout_check_scores_both_sides_on_labels_the_tuned_encoder_never_saw():
    from sklearn.linear_model import LogisticRegression

    from labelloop.prelabel.finetune import holdout_check
    from labelloop.prelabel.recipe import SWITCH_Z, macro_f1

    rows = banking_rows("train", [*PAIR, "lost_or_stolen_card"], 20)
    texts, y = [r["text"] for r in rows], np.array([r["category"] for r in rows])
    x = load_encoder().encode(texts)
    seen: dict[str, np.ndarray] = {}

    def frozen_predict(fit_idx: np.ndarray, held: np.ndarray) -> np.ndarray:
        seen["fit"], seen["held"] = fit_idx, held
        seen["pred"] = LogisticRegression(C=10, max_iter=2000).fit(
            x[fit_idx], y[fit_idx]).predict(x[held])
        return seen["pred"]

    check = holdout_check(texts, y, base=resolve_model_path("minilm"),
                          frozen_predict=frozen_predict, max_steps=4)
    assert (check.n_fit, check.n_held) == (40, 20)
    assert not set(seen["fit"]) & set(seen["held"])  # held rows never tuned on
    assert sorted(set(y[seen["held"]])) == sorted(set(y))  # stratified
    assert check.frozen_macro_f1 == pytest.approx(
        macro_f1(y[seen["held"]], seen["pred"], np.ones(20)))
    assert 0.0 <= check.tuned_macro_f1 <= 1.0
    assert check.gain == pytest.approx(check.tuned_macro_f1 - check.frozen_macro_f1)
    assert check.fine_tune == (check.gain > SWITCH_Z * check.stderr)
    with pytest.raises(ValidationError, match="40 labels"):
        holdout_check(texts[:30], y[:30], base=resolve_model_path("minilm"),
                      frozen_predict=frozen_predict)
