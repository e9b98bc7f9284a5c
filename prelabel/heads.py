"""Classifier heads over embeddings: zero-shot label prototypes and a trained classifier.

Both return probabilities over the project's labels in the project's order, shape
(n_items, n_labels), so that selection and routing never care which head produced them.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from labelloop.prelabel.smoothing import NeighbourSmoothing


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def dropout_linear(weight: np.ndarray, bias: np.ndarray, p: float = 0.2) -> object:
    """A torch module ``Dropout(p) -> Linear``: features (m, d) -> logits (m, c).

    weight: (c, d), bias: (c,). What MC-dropout strategies (``selection.bald``) sample from:
    the head's own linear map with dropout on its input features.
    """
    import torch

    weight = np.asarray(weight, dtype=np.float32)
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float32)))
    return torch.nn.Sequential(torch.nn.Dropout(p), linear)


def full_linear(model: LogisticRegression, rows: list[int] | np.ndarray, n_out: int,
                ) -> tuple[np.ndarray, np.ndarray]:
    """A fitted logistic regression's logits as weights (n_out, d) and bias (n_out,).

    ``rows[i]`` is the output row of ``model.classes_[i]``; every other row gets weight 0 and
    bias -30, so a class never trained on never wins. Binary models (one row in sklearn)
    become two rows, -z/2 and +z/2, as in ``ClassifierHead.logits``.
    """
    coef, icpt = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        coef, icpt = np.vstack([-coef / 2, coef / 2]), np.r_[-icpt / 2, icpt / 2]
    weight = np.zeros((n_out, coef.shape[1]))
    bias = np.full(n_out, -30.0)
    weight[rows], bias[rows] = coef, icpt
    return weight, bias


def label_prompt(label: str, description: str | None) -> str:
    """The text a zero-shot prototype is built from: the label's words and its description."""
    words = label.replace("_", " ").replace("-", " ")
    return f"{words}: {description}" if description else words


# Where heads pickled by labelloop 0.1 (stages as top-level packages) find their classes now.
LEGACY_MODULES = {"prelabel": "labelloop.prelabel", "prelabel.heads": "labelloop.prelabel.heads",
                  "prelabel.smoothing": "labelloop.prelabel.smoothing"}


@dataclass
class ZeroShotHead:
    """Cold start: cosine similarity to label prototypes, softmax with a temperature.

    prototypes: (n_labels, dim), unit rows. A temperature of 0.05 turns cosine gaps of a few
    hundredths (typical for MiniLM) into usable confidence differences.
    """

    labels: list[str]
    prototypes: np.ndarray
    temperature: float = 0.05

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax((x @ self.prototypes.T) / self.temperature)

    def features(self, x: np.ndarray) -> np.ndarray:
        """What the head's linear map reads: the embeddings themselves."""
        return x

    def dropout_module(self, p: float = 0.2) -> object:
        """The head as ``Dropout(p) -> Linear`` over ``features`` (see ``dropout_linear``)."""
        return dropout_linear(self.prototypes / self.temperature,
                              np.zeros(len(self.labels)), p)


@dataclass
class ClassifierHead:
    """Multinomial logistic regression on embeddings, mapped onto the full label list.

    Labels never seen in training get probability 0; ``temperature`` (fitted on held-out
    human labels, see ``prelabel.calibration``) rescales the logits. With ``smoothing``
    (``prelabel.smoothing``), every input is first averaged with its pool neighbours; callers
    always pass raw embeddings.
    """

    labels: list[str]
    model: LogisticRegression
    temperature: float = 1.0
    smoothing: NeighbourSmoothing | None = None

    @classmethod
    def fit(cls, labels: list[str], x: np.ndarray, y: list[str], c: float = 10.0,
            seed: int = 0, smoothing: NeighbourSmoothing | None = None) -> ClassifierHead:
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        model.fit(x if smoothing is None else smoothing.transform(x), y)
        return cls(labels=labels, model=model, smoothing=smoothing)

    def features(self, x: np.ndarray) -> np.ndarray:
        """What the logistic regression sees: ``x`` itself, or ``x`` smoothed."""
        return x if self.smoothing is None else self.smoothing.transform(x)

    def sklearn_model(self) -> object:
        """The head as one scikit-learn estimator on raw embeddings (what MLflow stores)."""
        if self.smoothing is None:
            return self.model
        from sklearn.pipeline import Pipeline

        return Pipeline([("neighbour_smoothing", self.smoothing), ("classifier", self.model)])

    def logits(self, x: np.ndarray) -> np.ndarray:
        raw = self.model.decision_function(self.features(x))
        if raw.ndim == 1:  # binary: sklearn returns one column
            raw = np.stack([-raw / 2, raw / 2], axis=1)
        return raw

    def dropout_module(self, p: float = 0.2) -> object:
        """The head as ``Dropout(p) -> Linear`` over ``features``, logits over every project
        label in order (temperature applied; labels never trained on get a bias of -30)."""
        index = {label: i for i, label in enumerate(self.labels)}
        cols = [index[c] for c in self.model.classes_]
        weight, bias = full_linear(self.model, cols, len(self.labels))
        weight[cols] /= self.temperature
        bias[cols] /= self.temperature
        return dropout_linear(weight, bias, p)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        seen = softmax(self.logits(x) / self.temperature)
        out = np.zeros((x.shape[0], len(self.labels)), dtype=np.float64)
        index = {label: i for i, label in enumerate(self.labels)}
        cols = [index[c] for c in self.model.classes_]
        out[:, cols] = seen
        return out

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path

    @staticmethod
    def load(path: str | Path) -> ClassifierHead:
        """A stored head; one pickled before the stages moved under ``labelloop`` (module
        names ``prelabel.heads``, ``prelabel.smoothing``) loads too."""
        for old, new in LEGACY_MODULES.items():  # the old names are these modules now
            sys.modules[old] = importlib.import_module(new)
        head = joblib.load(path)
        if not isinstance(head, ClassifierHead):
            raise TypeError(f"{path} does not hold a ClassifierHead")
        return head
