"""Shared fixtures: a few hundred BANKING77 questions embedded by the real MiniLM encoder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BANKING_TRAIN = DATA / "banking77" / "train.csv"


@pytest.fixture(scope="session")
def banking() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(X (300, 384) float32 unit rows, y (300,) int in 0..9, texts): 10 classes x 30 rows."""
    if not BANKING_TRAIN.is_file():
        pytest.skip(f"BANKING77 data not found at {BANKING_TRAIN} (needs the shared/ folder "
                    "next to the repository)")
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
