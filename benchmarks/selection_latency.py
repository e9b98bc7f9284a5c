"""How long selection takes: pick 1,000 items from large pools of cached predictions.

Pools are random unit 384-d float32 embeddings with 20-class Dirichlet probabilities.
"default" and "margin" run on 100k and 1M items (median of 3 timed runs after one warm-up);
modAL's ranked batch ("modal-ranked-batch", 200 labeled items) runs on 10k items, then on
larger pools while it finishes inside the time cap (each run in a child process that is
stopped at the cap). Prints a table and writes benchmarks/results/selection_latency.json.

    python benchmarks/selection_latency.py [--cap-seconds 420] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
N_PICK = 1_000
DIM, CLASSES = 384, 20


def make_pool(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (size, 384) float32 unit rows, probs (size, 20) float32)."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((size, DIM), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    probs = rng.dirichlet(np.full(CLASSES, 0.3), size=size).astype(np.float32)
    return emb, probs


def time_strategy(name: str, emb: np.ndarray, probs: np.ndarray, labeled: np.ndarray | None,
                  runs: int) -> list[float]:
    from labelloop.selection.strategies import Pool, get_strategy

    pool = Pool(probs=probs, embeddings=emb, labeled_embeddings=labeled)
    strategy = get_strategy(name)
    times = []
    for r in range(runs):
        start = time.perf_counter()
        picks = strategy.select(pool, N_PICK, np.random.default_rng(r))
        times.append(time.perf_counter() - start)
        if len(np.unique(picks)) != min(N_PICK, len(emb)):
            raise RuntimeError(f"{name} returned duplicate picks")
    return times


def _ranked_batch_child(size: int, threads: int, queue: mp.Queue) -> None:
    import faiss

    faiss.omp_set_num_threads(threads)
    emb, probs = make_pool(size, seed=1)
    labeled = emb[:200].copy()
    queue.put(time_strategy("modal-ranked-batch", emb[200:], probs[200:], labeled, runs=1)[0])


def ranked_batch_until_cap(cap_s: float, threads: int) -> tuple[list[dict], float]:
    rows, spent, size = [], 0.0, 10_000
    while spent < cap_s:
        queue: mp.Queue = mp.get_context("fork").Queue()
        child = mp.get_context("fork").Process(target=_ranked_batch_child,
                                               args=(size, threads, queue))
        start = time.perf_counter()
        child.start()
        child.join(timeout=cap_s - spent)
        elapsed = time.perf_counter() - start
        spent += elapsed
        if child.is_alive():
            child.terminate()
            child.join()
            rows.append({"strategy": "modal-ranked-batch", "pool_size": size - 200,
                         "seconds": None, "note": f"stopped at the cap after {elapsed:.0f}s"})
            break
        seconds = queue.get()
        rows.append({"strategy": "modal-ranked-batch", "pool_size": size - 200,
                     "seconds": seconds, "note": "1 run, 200 labeled"})
        # cost grows at least linearly with the pool: only go on if 2x fits in what is left
        if 2.2 * elapsed > cap_s - spent:
            break
        size *= 2
    return rows, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap-seconds", type=float, default=420.0,
                        help="time allowed for the modAL ranked-batch runs")
    parser.add_argument("--threads", type=int, default=2, help="faiss OpenMP threads")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()

    import faiss

    faiss.omp_set_num_threads(args.threads)
    rows = []
    for size in args.sizes:
        emb, probs = make_pool(size)
        for name in ("default", "margin"):
            time_strategy(name, emb, probs, None, runs=1)  # warm-up
            times = time_strategy(name, emb, probs, None, runs=3)
            rows.append({"strategy": name, "pool_size": size, "seconds": statistics.median(times),
                         "note": "median of 3"})
            print(f"{name:>20} {size:>9,} {statistics.median(times):8.3f}s", flush=True)
        del emb, probs
    ranked, spent = ranked_batch_until_cap(args.cap_seconds, args.threads)
    rows.extend(ranked)
    largest = max((r["pool_size"] for r in ranked if r["seconds"] is not None), default=None)

    print(f"\nPick {N_PICK:,} items ({DIM}-d embeddings, {CLASSES} classes), "
          f"{args.threads} faiss threads, {os.cpu_count()} CPUs")
    print(f"{'strategy':<20} {'pool':>10} {'seconds':>9}  note")
    for r in rows:
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.3f}"
        print(f"{r['strategy']:<20} {r['pool_size']:>10,} {secs:>9}  {r['note']}")
    print(f"modal-ranked-batch: largest pool finished within the {args.cap_seconds:.0f}s cap: "
          f"{largest}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"n_pick": N_PICK, "dim": DIM, "n_classes": CLASSES, "faiss_threads": args.threads,
           "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
           "ranked_batch_cap_seconds": args.cap_seconds, "ranked_batch_seconds_used": spent,
           "ranked_batch_largest_pool_finished": largest, "results": rows}
    (RESULTS / "selection_latency.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'selection_latency.json'}")


if __name__ == "__main__":
    main()
