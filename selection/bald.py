"""BALD by MC-dropout over a torch model (``pool.model``).

Shapes: ``n_pool`` items, ``d`` dimensions, ``c`` classes, ``t`` stochastic passes.
"""

from __future__ import annotations

import numpy as np

from labelloop.core.errors import ValidationError
from labelloop.selection import scores
from labelloop.selection.pool import Pool, check_request, require_embeddings, seed_from, top_k


def mc_dropout_bald(model: object, emb: np.ndarray, passes: int, seed: int,
                    chunk: int = 8192) -> np.ndarray:
    """BALD scores (n_pool,) from ``passes`` dropout-on forward passes of ``model``.

    model: torch module, (m, d) float32 tensor -> (m, c) logits, with dropout layers.
    emb: (n_pool, d). Only dropout layers are switched to training mode (batch norm keeps its
    running statistics); every module's mode is restored afterwards.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ValidationError("strategy 'bald' needs pool.model, a torch module mapping "
                              "embeddings to logits", where="pool.model")
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    if not dropouts:
        raise ValidationError("strategy 'bald' needs a model with dropout layers "
                              "(MC-dropout)", where="pool.model")
    modes = {m: m.training for m in model.modules()}
    out = np.empty(len(emb), dtype=np.float64)
    try:
        model.eval()
        for m in dropouts:
            m.train()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, len(emb), chunk):
                x = torch.from_numpy(emb[start:start + chunk])
                mc = torch.stack([torch.softmax(model(x), dim=-1) for _ in range(passes)])
                out[start:start + chunk] = scores.bald(mc.double().numpy())
    finally:
        for m, training in modes.items():
            m.train(training)
    return out


class BALD:
    """Bayesian Active Learning by Disagreement with MC-dropout.

    Houlsby, Huszar, Ghahramani & Lengyel (2011), "Bayesian Active Learning for
    Classification and Preference Learning"; Gal, Islam & Ghahramani (2017), "Deep Bayesian
    Active Learning with Image Data", ICML. Top-n by mutual information (not BatchBALD).
    """

    name = "bald"
    needs_model = True  # the service passes the head as a torch module over its features

    def __init__(self, passes: int = 20) -> None:
        self.passes = passes

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_request(pool, n)
        emb = require_embeddings(pool, self.name)
        return top_k(mc_dropout_bald(pool.model, emb, self.passes, seed_from(rng)), n)

    def __str__(self) -> str:
        return f"BALD(mc_dropout passes={self.passes})"
