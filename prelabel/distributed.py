"""Embedding through Ray, for pools that outgrow one machine (``LABELLOOP_COMPUTE=ray``).

The texts are cut into chunks and mapped over a pool of Ray actors (``ray.util.ActorPool``),
each loading the same encoder the single-process path uses (``prelabel.service.encoder_for``)
once, and kept warm between calls. On
one machine that is ``ray.init()``'s local cluster; ``LABELLOOP_RAY_ADDRESS`` joins a
running cluster instead, and the same code then spreads over its nodes. The vectors come
back in the texts' order and equal the single-process ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelloop.core.settings import Settings

RAY_BATCH = 2048  # texts per actor call at most


class Embedder:
    """A Ray actor: one encoder, loaded once, encoding the chunks it is handed."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import ray
        import torch

        from labelloop.prelabel.service import encoder_for

        # as many torch threads as the CPUs Ray gave this actor: no oversubscription
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        torch.set_num_threads(max(1, int(cpus)))
        self.settings = Settings(**settings, show_progress=False)
        self.encoder = encoder_for(self.settings)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, batch_size=self.settings.embed_batch_size
                                   ).astype(np.float32)


def ray_ready(settings: Settings) -> None:
    """Join the cluster at ``settings.ray_address``, or start a local one (all cores)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=settings.ray_address, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)


ENCODER_FIELDS = ("encoder", "runtime", "quantize", "embed_batch_size")
_current: dict[str, Any] = {}  # the one warm pool: its key, actors and ActorPool


def _pool(settings: Settings, size: int) -> Any:
    """A warm pool of ``size`` actors for this encoder configuration. One pool at a time:
    a pool for another configuration first frees the CPUs the old one holds."""
    import ray
    from ray.util import ActorPool

    config = {name: getattr(settings, name) for name in ENCODER_FIELDS} | {"device": "cpu"}
    key = (tuple(sorted(config.items())), size, ray.get_runtime_context().get_job_id())
    if _current.get("key") != key:
        for old in _current.get("actors", []):
            ray.kill(old)
        actor = ray.remote(num_cpus=1)(Embedder)
        actors = [actor.remote(config) for _ in range(size)]
        _current.update(key=key, actors=actors, pool=ActorPool(actors))
    return _current["pool"]


def embed_texts(texts: list[str], settings: Settings, *, actors: int | None = None,
                ) -> np.ndarray:
    """The configured encoder's vectors for ``texts`` in order, computed by a pool of Ray
    actors of one CPU each (default: as many as Ray offers CPUs, at most one per chunk of
    ``embed_batch_size``), each handed chunks of at most ``RAY_BATCH`` texts."""
    import ray

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    ray_ready(settings)
    n = actors or max(1, min(int(ray.cluster_resources().get("CPU", 1)),
                             -(-len(texts) // settings.embed_batch_size)))
    # Ray's cost is per call: a few large chunks per actor, not many small ones (the
    # encoder cuts each into embed_batch_size batches inside).
    size = max(settings.embed_batch_size, min(RAY_BATCH, -(-len(texts) // n)))
    chunks = [texts[i:i + size] for i in range(0, len(texts), size)]
    parts = _pool(settings, n).map(lambda a, chunk: a.encode.remote(chunk), chunks)
    return np.concatenate(list(parts))  # ActorPool.map keeps the chunks' order
