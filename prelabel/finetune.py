"""Few-shot contrastive fine-tuning of the sentence encoder (SetFit), and whether it pays.

Where classes are not topics, a frozen sentence encoder is the ceiling: a classifier on its
embeddings cannot separate what the embeddings do not. SetFit (Tunstall et al., "Efficient
Few-Shot Learning Without Prompts", 2022; the ``setfit`` package) fine-tunes the encoder on
pairs of labeled texts (same class: similar, different: dissimilar; cosine-similarity loss)
and fits a logistic head on the new embeddings: with tens of labels it often does what the
frozen encoder cannot do with hundreds.

``fine_tune`` writes the tuned encoder as a local Hugging Face folder (sentence-transformers
layout, mean pooling), which ``prelabel.encoders.load_encoder`` loads like any user model:
an encoder version of its own, whose vectors are cached under its own key. ``holdout_check``
says whether fine-tuning beats the frozen recipe on labels the tuned encoder never saw.

The number of contrastive steps is capped (``MAX_STEPS`` of ``BATCH_SIZE`` pairs), not tied
to the number of labels, so a fine-tune costs about the same at 100 labels as at 1,000.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelloop.core.errors import ValidationError

MAX_STEPS = 200  # contrastive steps: enough pairs for a few hundred labels
BATCH_SIZE = 16
MIN_LABELS = 40  # fewer: no fine-tuning (too few pairs of every class)
HOLDOUT = 1 / 3
GROWTH = 2.0  # a retrain checks again once the labels have grown this much since the last


def check_due(n_labels: int, last_checked: float | None, min_labels: int) -> bool:
    """The rule every retrain follows (``training.finetuning``, ``labelloop simulate``): the
    first check at ``min_labels`` labels, then each time the labels have grown ``GROWTH``
    times since the last one."""
    if n_labels < min_labels:
        return False
    return last_checked is None or n_labels >= GROWTH * float(last_checked)


def fine_tune(texts: Sequence[str], labels: Sequence[Any], *, base: str | Path,
              out: str | Path, seed: int = 0, max_steps: int = MAX_STEPS,
              batch_size: int = BATCH_SIZE, device: str = "auto",
              progress: Callable[[int], None] | None = None) -> Path:
    """Fine-tune the encoder at ``base`` (a local sentence-transformers or Hugging Face
    folder) on (texts, labels) with SetFit's contrastive pairs, and write the tuned encoder to
    ``out``, whole or not at all (a folder written beside it, then renamed). Returns ``out``.
    Runs on a GPU when there is one (``device`` "auto"). ``progress(1)`` after each step;
    SetFit's own bars and logs stay quiet."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transformers import ProgressCallback, TrainerCallback

    class Steps(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            if progress is not None:
                progress(1)

    from labelloop.prelabel.encoders import pick_device

    if len(texts) != len(labels) or len(set(labels)) < 2:
        raise ValidationError(f"fine-tuning needs texts and labels of equal length with two "
                              f"classes at least, got {len(texts)} texts, {len(labels)} "
                              f"labels, {len(set(labels))} classes", where="finetune")
    out = Path(out)
    names = sorted({str(label) for label in labels})
    index = {name: i for i, name in enumerate(names)}
    data = Dataset.from_dict({"text": list(texts), "label": [index[str(x)] for x in labels]})
    with _quiet(), tempfile.TemporaryDirectory(prefix="labelloop-setfit-") as scratch:
        model = SetFitModel.from_pretrained(str(base), device=pick_device(device))
        args = TrainingArguments(output_dir=scratch, batch_size=batch_size, num_epochs=1,
                                 max_steps=max_steps, seed=seed, report_to="none",
                                 save_strategy="no", show_progress_bar=False,
                                 logging_strategy="no")
        trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[Steps()])
        trainer.st_trainer.remove_callback(ProgressCallback)
        trainer.train_embeddings(*trainer.dataset_to_parameters(data), args=args)
    partial = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")
    with _quiet():
        model.model_body.save(str(partial))
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return out


@contextmanager
def _quiet() -> Iterator[None]:
    """SetFit's notices that say nothing here: no classification head in a sentence
    encoder's folder (none is wanted), pinned memory without a GPU."""
    import logging
    import warnings

    import datasets
    import transformers

    loggers = [logging.getLogger(name) for name in ("setfit", "sentence_transformers")]
    levels = [lg.level for lg in loggers]
    bars = [(datasets.utils.logging, datasets.utils.logging.is_progress_bar_enabled()),
            (transformers.utils.logging, transformers.utils.logging.is_progress_bar_enabled())]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        for module, _ in bars:  # "Map", "Loading weights", "Writing model shards"
            module.disable_progress_bar()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pin_memory.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        for module, enabled in bars:
            if enabled:
                module.enable_progress_bar()


@dataclass
class HoldoutCheck:
    """Frozen recipe against a fine-tuned encoder on the same held-out labels."""

    n_fit: int
    n_held: int
    frozen_macro_f1: float
    tuned_macro_f1: float
    gain: float
    stderr: float
    fine_tune: bool  # the gain is above ``SWITCH_Z`` standard errors
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def holdout_check(texts: Sequence[str], y: Sequence[Any], *, base: str | Path,
                  frozen_predict: Any, c: float = 10.0, seed: int = 0,
                  uniform: np.ndarray | None = None, max_steps: int = MAX_STEPS,
                  out: str | Path | None = None,
                  progress: Callable[[int], None] | None = None) -> HoldoutCheck:
    """Fine-tune on two thirds of the labels (stratified where every class allows), then
    score on the other third: a logistic regression (``c``) on the tuned embeddings against
    ``frozen_predict(fit_idx, held_idx) -> predicted labels of the held rows``, the frozen
    recipe fitted on the same rows (its smoothing and all). Scores are ``recipe.macro_f1``
    with the uniform rows weighted up; the switch needs the gain above ``SWITCH_Z``
    standard errors of the paired difference, as any recipe change does.

    With ``out``, the tuned encoder is kept there (whole or not at all): the encoder the
    check scored is the one a caller deploys, not a second tuning on all labels it never
    checked (and half the cost)."""
    import time

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from labelloop.prelabel.encoders import Encoder, pick_device
    from labelloop.prelabel.recipe import SWITCH_Z, macro_f1, paired_stderr, uniform_weights

    start = time.perf_counter()
    y = np.asarray(y)
    if len(y) < MIN_LABELS:
        raise ValidationError(f"a fine-tuning check needs {MIN_LABELS} labels, got {len(y)}",
                              where="finetune")
    _, counts = np.unique(y, return_counts=True)
    rows = np.arange(len(y))
    fit_idx, held = train_test_split(rows, test_size=HOLDOUT, random_state=seed,
                                     stratify=y if counts.min() >= 3 else None)
    weight = uniform_weights(np.zeros(len(y), bool) if uniform is None else uniform)[held]
    frozen = np.asarray(frozen_predict(fit_idx, held))
    with tempfile.TemporaryDirectory(prefix="labelloop-tuned-") as scratch:
        tuned = fine_tune([texts[i] for i in fit_idx], y[fit_idx], base=base,
                          out=Path(out) if out is not None else Path(scratch) / "encoder",
                          seed=seed, max_steps=max_steps, progress=progress)
        # Loaded here, not through load_encoder's process-wide cache: a scratch folder goes.
        z = Encoder(name=str(tuned), path=tuned, device=pick_device()).encode(list(texts))
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(z[fit_idx], y[fit_idx])
    tuned_pred = clf.predict(z[held])
    frozen_f1, tuned_f1 = macro_f1(y[held], frozen, weight), macro_f1(y[held], tuned_pred, weight)
    stderr = paired_stderr(y[held], tuned_pred, frozen, weight, seed)
    gain = tuned_f1 - frozen_f1
    return HoldoutCheck(n_fit=len(fit_idx), n_held=len(held), frozen_macro_f1=frozen_f1,
                        tuned_macro_f1=tuned_f1, gain=gain, stderr=stderr,
                        fine_tune=bool(gain > SWITCH_Z * stderr),
                        seconds=time.perf_counter() - start)


class Tuning:
    """Fine-tuning inside ``labelloop simulate``'s ``pipeline`` row, by the product's rule
    (``check_due``, ``holdout_check``): ``texts`` are the table's, indexed like its rows.
    ``check`` returns the tuned encoder where it wins (kept in a folder this object owns
    until ``close``), else None."""

    def __init__(self, texts: Sequence[str], *, base: str | Path, min_labels: int,
                 steps: int = MAX_STEPS) -> None:
        self.texts, self.base, self.min_labels, self.steps = list(texts), base, min_labels, steps
        self._dir = tempfile.TemporaryDirectory(prefix="labelloop-simulate-tuned-")
        self.checks: list[dict[str, Any]] = []

    def check(self, rows: np.ndarray, y: np.ndarray, frozen_predict: Any, *, c: float,
              seed: int, uniform: np.ndarray) -> Any:
        from labelloop.prelabel.encoders import Encoder, pick_device

        out = Path(self._dir.name) / f"v{len(self.checks)}"
        result = holdout_check([self.texts[i] for i in rows], y, base=self.base,
                               frozen_predict=frozen_predict, c=c, seed=seed,
                               uniform=uniform, max_steps=self.steps, out=out)
        self.checks.append({"labels": int(len(y)), **result.to_json()})
        if not result.fine_tune:
            shutil.rmtree(out, ignore_errors=True)
            return None
        return Encoder(name=str(out), path=out, device=pick_device())

    def close(self) -> None:
        self._dir.cleanup()

