"""Shared fixtures: a few hundred BANKING77 questions embedded by the real MiniLM encoder."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from labelloop.demo import demo_data

# BANKING77 ships inside the package (CC BY 4.0), so these tests run without ../shared.
BANKING_TRAIN = demo_data() / "train.csv"


@pytest.fixture(scope="session")
def banking() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(X (300, 384) float32 unit rows, y (300,) int in 0..9, texts): 10 classes x 30 rows."""
    per_class: dict[str, list[str]] = {}
    with BANKING_TRAIN.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            per_class.setdefault(row["category"], []).append(row["text"])
    names = sorted(per_class)[:10]
    texts = [t for name in names for t in per_class[name][:30]]
    y = np.repeat(np.arange(len(names)), 30)
    from prelabel.encoders import load_encoder

    X = load_encoder().encode(texts, batch_size=64)  # noqa: N806
    return X, y, texts
