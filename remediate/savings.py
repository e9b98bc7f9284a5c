"""Labels saved against random, replayed on the project's own human labels.

No project can label its pool twice, once by its strategy and once at random, so this asks
the next best thing: among the items people labeled, with their labels as the truth, how
many labels does the ``default`` strategy need to reach 95% of the macro-F1 that all of
them give, and how many does random sampling need (``selection.simulate.run_simulation``
on the items' cached vectors, a stratified fifth held out)? The items were picked by the
project's own strategy, so the pool is harder than the project's whole pool: the figure
describes the labeled data, and is ``None`` where there are too few labels to replay.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.errors import ValidationError
from labelloop.prelabel.cache import load_embeddings
from labelloop.selection.simulate import run_simulation
from labelloop.store.models import FinalLabel, Item, ModelVersion, Project

MIN_REPLAY = 60  # human labels needed before a replay says anything
GOAL = "labels_to_95pct"


def labels_saved(session: Session, project: Project, *, seed: int = 0) -> dict[str, Any] | None:
    """``{"n_items", "goal", "default", "random", "saved", "share_saved"}``: labels to 95%
    of the all-labels macro-F1 by ``default`` and by random (``None``: not reached within
    the labeled items), and the difference. ``None`` without enough human labels, an
    encoder's vectors or two classes with two items each."""
    model = session.get(ModelVersion, project.active_model_id) \
        if project.active_model_id else None
    if model is None:
        return None
    rows = session.execute(select(FinalLabel.item_id, FinalLabel.label).join(
        Item, Item.id == FinalLabel.item_id).where(
        Item.project_id == project.id, Item.split == "pool",
        FinalLabel.origin.in_(("human", "reviewed"))).order_by(FinalLabel.item_id)).all()
    sizes = Counter(label for _, label in rows)
    rows = [(i, label) for i, label in rows if sizes[label] >= 2]  # a stratified split
    vectors = load_embeddings(session, [i for i, _ in rows], model.encoder)
    rows = [(i, label) for i, label in rows if i in vectors]
    if len(rows) < MIN_REPLAY or len({label for _, label in rows}) < 2:
        return None
    x = np.stack([vectors[i] for i, _ in rows])
    y = np.asarray([label for _, label in rows], dtype=object)
    n_train = len(rows) - int(np.ceil(0.2 * len(rows)))
    batch = max(10, n_train // 20)
    try:
        result = run_simulation(x, y, ["default"], seed_size=min(batch, n_train - 1),
                                batch_size=batch, budget=n_train, repeats=1, seed=seed,
                                pipeline=False, dataset=project.name)
    except ValidationError:
        return None
    default = result["strategies"]["default"][GOAL]
    random = result["strategies"]["random"][GOAL]
    saved = random - default if default is not None and random is not None else None
    return {"n_items": len(rows), "goal": "95% of the macro-F1 of all the labeled items",
            "default": default, "random": random, "saved": saved,
            "share_saved": saved / random if saved is not None and random else None}
