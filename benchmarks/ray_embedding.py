"""Embedding through Ray against the single-process path, on the same texts and CPUs.

Starts a local Ray (``ray.init(num_cpus=N)``), embeds ``--n`` BANKING77 texts once with the
encoder in this process (torch using the N cores) and once through a pool of Ray actors
(``prelabel.distributed``, N actors of one core each), checks the vectors agree, and prints
both rates. Actor start-up (loading the encoder in each) is timed apart: it is paid once per
run, not per batch.

    python benchmarks/ray_embedding.py --n 3000 --cpus 2

Writes benchmarks/results/ray_embedding.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from labelloop.core.settings import Settings
from labelloop.demo import demo_data
from labelloop.prelabel.service import encoder_for

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    import csv

    import ray
    import torch

    from labelloop.prelabel.distributed import embed_texts

    with (demo_data() / "train.csv").open(newline="", encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)][: args.n]
    settings = Settings(home=Path("/tmp/labelloop-ray-bench"), show_progress=False)
    torch.set_num_threads(args.cpus)
    encoder = encoder_for(settings)
    encoder.encode(texts[:64])  # warm
    t0 = time.perf_counter()
    local = encoder.encode(texts, batch_size=settings.embed_batch_size)
    local_s = time.perf_counter() - t0
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    t0 = time.perf_counter()
    embed_texts(texts[: args.cpus * 64], settings)  # actors start and load the encoder
    startup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    distributed = embed_texts(texts, settings)
    ray_s = time.perf_counter() - t0
    ray.shutdown()
    agree = float(np.abs(distributed - local).max())
    result = {"n": len(texts), "cpus": args.cpus, "single_process_seconds": round(local_s, 2),
              "single_process_per_s": round(len(texts) / local_s, 1),
              "ray_seconds": round(ray_s, 2), "ray_per_s": round(len(texts) / ray_s, 1),
              "ray_over_single": round(ray_s / local_s, 3),
              "ray_startup_seconds": round(startup_s, 1), "max_abs_difference": agree}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_embedding.json").write_text(json.dumps(result, indent=2))
    print(f"{len(texts)} texts on {args.cpus} CPUs: one process {result['single_process_per_s']}"
          f"/s, Ray {result['ray_per_s']}/s ({result['ray_over_single']:.2f}x the time), "
          f"actor start-up {startup_s:.1f} s, max |difference| {agree:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
