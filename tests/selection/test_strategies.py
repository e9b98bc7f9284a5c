"""Every registered strategy: valid picks, determinism, cold start, and what each promises."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from labelloop.core.errors import EmptyPoolError, ValidationError
from labelloop.selection.strategies import Pool, Strategy, available_strategies, get_strategy

NEEDS_PROBS = {"least-confidence", "margin", "entropy", "density-weighted", "class-balance",
               "modal-margin", "modal-entropy", "modal-uncertainty", "modal-ranked-batch"}
WORK_COLD = {"default", "random", "kmeans", "coreset"}


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _head(d: int, c: int) -> object:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(d, c))


@pytest.fixture(scope="module")
def real_pool(banking: tuple) -> Pool:
    """BANKING77 sample: 30 labeled (3 per class), 270 in the pool with the model's probs."""
    X, y, _ = banking  # noqa: N806
    rng = np.random.default_rng(0)
    labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), 3, replace=False)
                              for c in range(10)])
    pool_idx = np.setdiff1d(np.arange(len(y)), labeled)
    clf = LogisticRegression(C=10, max_iter=1000).fit(X[labeled], y[labeled])
    return Pool(probs=clf.predict_proba(X[pool_idx]), embeddings=X[pool_idx],
                labeled_embeddings=X[labeled], labeled_y=y[labeled],
                model=_head(X.shape[1], 10))


def test_registry_names_citations_and_unknown_name() -> None:
    names = available_strategies()
    assert names[0] == "default"
    assert NEEDS_PROBS | WORK_COLD | {"bald"} == set(names)
    for name in names:
        strategy = get_strategy(name)
        assert strategy.name == name and isinstance(strategy, Strategy)
        assert re.search(r"(19|20)\d\d", type(strategy).__doc__ or ""), f"{name}: no citation"
        assert "object at 0x" not in str(strategy)
    with pytest.raises(ValidationError) as err:
        get_strategy("marginal")
    assert "modal-ranked-batch" in err.value.message and "default" in err.value.message


@pytest.mark.parametrize("name", available_strategies())
def test_every_strategy_returns_distinct_valid_picks_deterministically(name: str,
                                                                       real_pool: Pool) -> None:
    strategy = get_strategy(name)
    picks = strategy.select(real_pool, 25, np.random.default_rng(7))
    assert picks.shape == (25,) and picks.dtype.kind == "i"
    assert len(set(picks.tolist())) == 25
    assert picks.min() >= 0 and picks.max() < real_pool.size
    again = get_strategy(name).select(real_pool, 25, np.random.default_rng(7))
    assert picks.tolist() == again.tolist()


@pytest.mark.parametrize("name", available_strategies())
def test_request_sizes_and_empty_pool(name: str) -> None:
    rng = np.random.default_rng(0)
    emb = _unit(rng.normal(size=(12, 8)))
    pool = Pool(probs=rng.dirichlet(np.ones(3), size=12), embeddings=emb,
                labeled_embeddings=_unit(rng.normal(size=(4, 8))),
                labeled_y=np.array([0, 1, 2, 0]), model=_head(8, 3))
    strategy = get_strategy(name)
    everything = strategy.select(pool, 50, rng)  # more than the pool: all of it
    assert sorted(everything.tolist()) == list(range(12))
    for bad in (0, -3):
        with pytest.raises(ValidationError):
            strategy.select(pool, bad, rng)
    empty = Pool(probs=np.zeros((0, 3)), embeddings=np.zeros((0, 8), dtype=np.float32),
                 model=pool.model)
    with pytest.raises(EmptyPoolError):
        strategy.select(empty, 5, rng)


@pytest.mark.parametrize("name", available_strategies())
def test_cold_start_without_probs(name: str, banking: tuple) -> None:
    X = banking[0]  # noqa: N806
    pool = Pool(probs=None, embeddings=X)
    strategy = get_strategy(name)
    if name in WORK_COLD:
        picks = strategy.select(pool, 20, np.random.default_rng(0))
        assert len(set(picks.tolist())) == 20
    elif name in NEEDS_PROBS:
        with pytest.raises(ValidationError, match="probabilities"):
            strategy.select(pool, 20, np.random.default_rng(0))
    else:  # bald needs a model, not probs
        with pytest.raises(ValidationError, match="pool.model|dropout"):
            strategy.select(pool, 20, np.random.default_rng(0))


def test_default_cold_start_covers_every_cluster(banking: tuple) -> None:
    X, y, _ = banking  # noqa: N806
    picks = get_strategy("default").select(Pool(probs=None, embeddings=X), 10,
                                           np.random.default_rng(0))
    # 10 picks over 10 intents: typical items from most of them, not one dense intent.
    assert len(set(y[picks].tolist())) >= 7


def test_default_spreads_a_batch_over_near_duplicates() -> None:
    rng = np.random.default_rng(3)
    # 40 copies of one confusing item plus 200 varied items of mixed uncertainty.
    dup = np.repeat(_unit(rng.normal(size=(1, 32))), 40, axis=0)
    varied = _unit(rng.normal(size=(200, 32)))
    emb = np.vstack([dup, varied])
    probs = np.vstack([np.tile([0.5, 0.5], (40, 1)),
                       np.column_stack([p := rng.uniform(0.52, 0.9, 200), 1 - p])])
    pool = Pool(probs=probs, embeddings=emb)
    margin = get_strategy("margin").select(pool, 10, rng)
    default = get_strategy("default").select(pool, 10, np.random.default_rng(0))
    assert (margin < 40).all()  # margin spends the whole batch on one duplicate
    assert (default < 40).sum() == 1  # default asks about it once
    assert len(set(default.tolist())) == 10


@pytest.mark.parametrize(("ours", "theirs"), [("margin", "modal-margin"),
                                              ("entropy", "modal-entropy"),
                                              ("least-confidence", "modal-uncertainty")])
def test_modal_wrappers_agree_with_our_scores(ours: str, theirs: str) -> None:
    rng = np.random.default_rng(11)
    pool = Pool(probs=rng.dirichlet(np.ones(6) * 0.7, size=3000), embeddings=None)
    a = get_strategy(ours).select(pool, 100, np.random.default_rng(0))
    b = get_strategy(theirs).select(pool, 100, np.random.default_rng(0))
    assert a.tolist() == b.tolist()


def test_modal_ranked_batch_prefers_items_away_from_the_labeled_set() -> None:
    rng = np.random.default_rng(5)
    labeled = _unit(rng.normal(size=(5, 16)))
    near = _unit(labeled[[0]] + 0.01 * rng.normal(size=(30, 16)))
    far = _unit(-labeled[[0]] + 0.3 * rng.normal(size=(30, 16)))
    pool = Pool(probs=np.tile([0.6, 0.4], (60, 1)), embeddings=np.vstack([near, far]),
                labeled_embeddings=labeled)
    picks = get_strategy("modal-ranked-batch").select(pool, 5, rng)
    assert (picks >= 30).all()


def test_class_balance_puts_targeted_classes_first() -> None:
    probs = np.array([[0.6, 0.4, 0.0], [0.0, 0.4, 0.6], [0.4, 0.0, 0.6], [0.0, 0.6, 0.4]])
    pool = Pool(probs=probs, embeddings=None, class_boost=np.array([1.0, 1.0, 5.0]))
    picks = get_strategy("class-balance").select(pool, 2, np.random.default_rng(0))
    assert sorted(picks.tolist()) == [1, 2]  # equal margins; class 2 most likely there
    with pytest.raises(ValidationError):
        bad = Pool(probs=probs, embeddings=None, class_boost=np.array([1.0, -1.0, 1.0]))
        get_strategy("class-balance").select(bad, 2, np.random.default_rng(0))


def test_coreset_takes_the_item_farthest_from_the_labeled_set_first() -> None:
    rng = np.random.default_rng(2)
    labeled = _unit(rng.normal(size=(3, 8)))
    pool_emb = _unit(labeled[[0, 1, 2] * 5] + 0.05 * rng.normal(size=(15, 8)))
    outlier = _unit(-labeled.sum(axis=0, keepdims=True))
    pool = Pool(probs=None, embeddings=np.vstack([pool_emb, outlier]),
                labeled_embeddings=labeled)
    assert get_strategy("coreset").select(pool, 3, rng)[0] == 15


def test_bald_needs_a_model_with_dropout() -> None:
    import torch

    rng = np.random.default_rng(0)
    emb = _unit(rng.normal(size=(20, 8)))
    with pytest.raises(ValidationError, match="pool.model"):
        get_strategy("bald").select(Pool(probs=None, embeddings=emb), 3, rng)
    no_dropout = torch.nn.Linear(8, 3)
    with pytest.raises(ValidationError, match="dropout"):
        get_strategy("bald").select(Pool(probs=None, embeddings=emb, model=no_dropout), 3, rng)
    model = _head(8, 3)
    model.eval()
    get_strategy("bald").select(Pool(probs=None, embeddings=emb, model=model), 3, rng)
    assert not model.training and not model[0].training  # modes restored


def test_default_large_batches_take_the_fast_path_and_stay_valid() -> None:
    rng = np.random.default_rng(4)
    emb = _unit(rng.normal(size=(6000, 384)))
    pool = Pool(probs=rng.dirichlet(np.ones(20) * 0.3, size=6000), embeddings=emb)
    picks = get_strategy("default").select(pool, 500, rng)  # 5,000 candidates x 500 clusters
    assert len(set(picks.tolist())) == 500
    margin_rank = get_strategy("margin").select(pool, 5000, rng)
    assert np.isin(picks, margin_rank).all()  # picks stay among the uncertain candidates


def test_pool_rows_must_agree() -> None:
    pool = Pool(probs=np.full((5, 2), 0.5), embeddings=np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValidationError, match="rows"):
        get_strategy("random").select(pool, 2, np.random.default_rng(0))
    with pytest.raises(ValidationError, match="neither"):
        get_strategy("random").select(Pool(probs=None, embeddings=None), 2,
                                      np.random.default_rng(0))
