"""Out-of-fold work on a retrain's rows: self-training's pseudo-labels and the auto-accept
thresholds, each from fold models that read what the head reads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from labelloop.core.settings import Settings
from labelloop.prelabel.cache import embed_items
from labelloop.prelabel.calibration import confident_mask
from labelloop.prelabel.encoders import Encoder
from labelloop.prelabel.heads import ClassifierHead
from labelloop.selection.calibration import calibrate_for_model, estimate_for_model
from labelloop.selection.routing import CALIBRATION
from labelloop.selection.service import unlabeled_pool
from labelloop.store.models import Item, Project


@dataclass
class Pseudo:
    """Pool items the model labeled for itself (self-training): never counted as human."""

    item_ids: list[int]
    x: np.ndarray  # (n_pseudo, d)
    labels: list[str]
    temperature: float
    threshold: float

    def summary(self) -> dict[str, Any]:
        return {"n_pseudo": len(self.labels), "threshold": self.threshold,
                "temperature": self.temperature, "digest": self.digest()}

    def digest(self) -> str:
        h = hashlib.sha256()
        for item_id, label in sorted(zip(self.item_ids, self.labels, strict=True)):
            h.update(f"{item_id}\t{label}\n".encode())
        return h.hexdigest()


def pool_vectors(session: Session, project: Project, settings: Settings,
                  encoder: Encoder) -> tuple[list[Item], np.ndarray]:
    pool = unlabeled_pool(session, project)
    if len(pool) > MAX_POOL_SAMPLE:  # estimates and pseudo-labels need a sample, not all
        rng = np.random.default_rng(0)
        pool = [pool[i] for i in np.sort(rng.choice(len(pool), MAX_POOL_SAMPLE, replace=False))]
    return pool, embed_items(session, pool, encoder, batch_size=settings.embed_batch_size)


PoolVectors = Callable[[], tuple[list[Item], np.ndarray]]


def out_of_fold(project: Project, head: ClassifierHead, x: np.ndarray, labels: list[str],
                 c: float, seed: int, folds: int,
                 pseudo: Pseudo | None = None) -> np.ndarray | None:
    """(n, n_labels) out-of-fold probabilities of rows (x, labels) from fold models that read
    what ``head`` reads (its smoothed features, worked out once here, not once per fold);
    every fold model also trains on ``pseudo``'s rows when given. None when a fold would see
    a single label."""
    from sklearn.model_selection import KFold

    z = head.features(x)
    extra = (head.features(pseudo.x), pseudo.labels) if pseudo is not None else None
    oof = np.zeros((len(labels), len(project.labels)))
    for fit_idx, held in KFold(folds, shuffle=True, random_state=seed).split(z):
        fit_z, fit_y = z[fit_idx], [labels[i] for i in fit_idx]
        if len(set(fit_y)) < 2:
            return None
        if extra is not None:
            fit_z, fit_y = np.vstack([fit_z, extra[0]]), fit_y + extra[1]
        fold = ClassifierHead.fit(list(project.labels), fit_z, fit_y, c=c, seed=seed)
        oof[held] = fold.predict_proba(z[held])
    return oof


def self_train(project: Project, settings: Settings, records: list[dict[str, Any]],
                x: np.ndarray, head: ClassifierHead, c: float, seed: int,
                pool_vectors: PoolVectors, folds: int = 3,
                ) -> tuple[ClassifierHead, Pseudo | None]:
    """Refit on the version's rows plus pool items the model labels with calibrated confidence
    >= ``settings.pseudo_label_threshold`` (temperature on ``folds``-fold out-of-fold
    predictions of the version's rows). Returns the new head and the pseudo-labels."""
    labels = [r["label"] for r in records]
    pool, xp = pool_vectors()
    if not pool or len(records) < 2 * folds:
        return head, None
    index = {lb: i for i, lb in enumerate(project.labels)}
    oof = out_of_fold(project, head, x, labels, c, seed, folds)
    if oof is None:
        return head, None
    probs = head.predict_proba(xp)
    sure, temperature = confident_mask(oof, np.array([index[lb] for lb in labels]), probs,
                                       settings.pseudo_label_threshold)
    if not sure.any():
        return head, None
    pseudo = Pseudo(item_ids=[pool[i].id for i in np.flatnonzero(sure)], x=xp[sure],
                    labels=[project.labels[k] for k in probs[sure].argmax(axis=1)],
                    temperature=temperature, threshold=settings.pseudo_label_threshold)
    head = ClassifierHead.fit(list(project.labels), np.vstack([x, pseudo.x]),
                              labels + pseudo.labels, c=c, seed=seed, smoothing=head.smoothing)
    return head, pseudo


HUMAN_ORIGINS = ("human", "reviewed", "given")
# Out-of-fold models for auto-accept calibration: with 10 folds each trains on 90% of the
# rows, close to the final model it stands in for (5 folds: 80%, a visibly weaker model).
# Measured on BANKING77 at 1,000 labels, 14 runs: 49.6% of non-critical items accepted at a
# true 0.985 against 45.2% at 0.987 with 5 folds (benchmarks/auto_accept.py).
CALIBRATION_FOLDS = 10
MIN_CALIBRATION = 50  # random calibration rows needed before the pool estimate is trusted
MAX_POOL_SAMPLE = 200_000  # the pool estimate is a mean: a uniform sample of this size will do


def calibrate_auto_accept(project: Project, records: list[dict[str, Any]], x: np.ndarray,
                           head: ClassifierHead, c: float, seed: int,
                           pool_vectors: PoolVectors, folds: int = CALIBRATION_FOLDS,
                           pseudo: Pseudo | None = None) -> dict[str, Any] | None:
    """Auto-accept thresholds from out-of-fold predictions on human-verified rows only
    (auto-accepted rows would grade the model with its own answers).

    With at least ``MIN_CALIBRATION`` rows from the random calibration sample (lineage reason
    "calibration"), a temperature and a label-noise rate are fitted on their out-of-fold
    predictions, and on bootstrap resamples of them, and the thresholds are the lowest whose
    accepted pool items have a one-sided 90% lower bound on accuracy at the target
    (``selection.auto_accept.pool_estimate``, whatever the head); the calibration rows they
    accept are stored beside them. With fewer, every human row
    counts and thresholds must pass a Clopper-Pearson lower bound on them: uncertainty-picked
    rows are harder than the pool, so this is safe and strict (often "never").

    With self-training, every fold model is trained the way the final one was (its rows plus
    the pseudo-labels), so the out-of-fold confidence is that of the model that routes.
    """
    human = np.array([r["lineage"].get("origin") in HUMAN_ORIGINS for r in records])
    if human.sum() < 50:
        return None
    kept = [r for r, h in zip(records, human, strict=True) if h]
    labels = [r["label"] for r in kept]
    index = {lb: i for i, lb in enumerate(project.labels)}
    y = np.array([index[lb] for lb in labels])
    oof = out_of_fold(project, head, x[human], labels, c, seed, folds, pseudo)
    if oof is None:
        return None
    random_rows = np.array([r["lineage"].get("reason") == CALIBRATION for r in kept])
    if random_rows.sum() < MIN_CALIBRATION:
        return calibrate_for_model(oof, y, project)
    pool, xp = pool_vectors()
    if not pool:
        return calibrate_for_model(oof, y, project)
    pool_probs = head.predict_proba(xp)
    return estimate_for_model(pool_probs, oof[random_rows], y[random_rows], project)
