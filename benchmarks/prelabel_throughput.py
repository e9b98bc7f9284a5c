"""Pre-label throughput: the full pre-label path against the raw encoder's forward pass.

Full path = cached-embedding lookup + MiniLM forward for missing items + classifier head +
prediction rows written to a SQLite store. Raw = the same texts through ``Encoder.forward``
at the same batch size, nothing else. Also the faster runtimes -- torch int8, ONNX Runtime fp32
and ONNX Runtime int8 -- with their speed and cosine to fp32 torch, and the full path with the
runtime the guard (``load_checked``, cosine >= 0.999) lets through.

    python benchmarks/prelabel_throughput.py [--n 3000] [--batch-size 64]

Prints a table and writes benchmarks/results/prelabel_throughput.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from labelloop.access.projects import create_project
from labelloop.core.settings import Settings
from labelloop.demo import demo_data
from labelloop.ingest.service import ingest_file
from labelloop.prelabel.encoders import load_encoder
from labelloop.prelabel.service import prelabel_project
from labelloop.store.db import open_session

OUT = Path(__file__).parent / "results" / "prelabel_throughput.json"


def texts_and_labels(n: int) -> tuple[list[str], list[str]]:
    with (demo_data() / "train.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:n]
    return [r["text"] for r in rows], sorted({r["category"] for r in rows})


def raw_forward(texts: list[str], batch_size: int, quantize: bool = False,
                runtime: str = "torch") -> tuple[float, np.ndarray]:
    enc = load_encoder(quantize=quantize, runtime=runtime)
    order = np.argsort([len(t) for t in texts], kind="stable")  # same batching as encode()
    start = time.perf_counter()
    out = [enc.forward([texts[i] for i in order[s:s + batch_size]])
           for s in range(0, len(texts), batch_size)]
    seconds = time.perf_counter() - start
    vectors = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
    vectors[order] = np.concatenate(out)
    return seconds, vectors


def full_path(texts: list[str], labels: list[str], batch_size: int,
              runtime: str = "torch") -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), embed_batch_size=batch_size, runtime=runtime)
        path = Path(tmp) / "items.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["text"])
            w.writerows([t] for t in texts)
        with open_session(settings.db_url) as s:
            p = create_project(s, "bench", labels)
            ingest_file(s, p, path, label_field=None)
        with open_session(settings.db_url) as s:
            from labelloop.access.projects import get_project

            start = time.perf_counter()
            prelabel_project(s, get_project(s, "bench"), settings)
        return time.perf_counter() - start


def smoothing_cost(vectors: np.ndarray, path_items_per_s: float) -> dict:
    """What neighbour smoothing (on by default for trained heads) adds per pre-labeled item.

    References of 20k (exact search, the largest size searched exactly) and 100k (HNSW, the
    largest kept) vectors: the texts' embeddings plus small noise, as a pool of paraphrases.
    """
    from labelloop.prelabel.smoothing import EXACT_UP_TO, MAX_REFERENCE, NeighbourSmoothing

    rng = np.random.default_rng(0)
    out = {}
    for size in (EXACT_UP_TO, MAX_REFERENCE):
        ref = vectors[rng.integers(0, len(vectors), size)]
        ref = ref + 0.05 * rng.standard_normal(ref.shape).astype(np.float32)
        start = time.perf_counter()
        smoothing = NeighbourSmoothing(ref, k=10)
        build = time.perf_counter() - start
        start = time.perf_counter()
        smoothing.transform(vectors)
        per_s = len(vectors) / (time.perf_counter() - start)
        overhead = path_items_per_s / per_s  # share of the path's time the lookup adds
        out[str(size)] = {"index_build_s": build, "items_per_s": per_s,
                          "overhead_on_prelabel_path": overhead}
        print(f"{'smoothing lookup, ' + str(size // 1000) + 'k refs':<30}{per_s:>10.1f}   "
              f"(index built in {build:.1f}s; adds {100 * overhead:.1f}% to the pre-label path)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    texts, labels = texts_and_labels(args.n)
    load_encoder()  # load (and warm) outside the timings
    raw_forward(texts[:128], args.batch_size)
    raw_s, fp32 = raw_forward(texts, args.batch_size)
    full_s = full_path(texts, labels, args.batch_size)
    n = len(texts)
    result: dict = {
        "n_texts": n, "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "raw_forward_items_per_s": n / raw_s, "prelabel_items_per_s": n / full_s,
        "prelabel_vs_raw": raw_s / full_s, "variants": {},
    }
    print(f"{'path':<30}{'items/s':>10}")
    print(f"{'raw encoder forward (torch)':<30}{n / raw_s:>10.1f}")
    print(f"{'labelloop prelabel (store)':<30}{n / full_s:>10.1f}   "
          f"({100 * raw_s / full_s:.1f}% of raw)")
    for runtime, quantize in (("torch", True), ("onnx", False), ("onnx", True)):
        name = f"{runtime} {'int8' if quantize else 'fp32'}"
        load_encoder(quantize=quantize, runtime=runtime)  # load / export outside the timing
        raw_forward(texts[:128], args.batch_size, quantize, runtime)
        seconds, vectors = raw_forward(texts, args.batch_size, quantize, runtime)
        cos = (fp32 * vectors).sum(axis=1)
        result["variants"][name] = {
            "items_per_s": n / seconds, "speedup": raw_s / seconds,
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            "within_0999": bool(cos.min() >= 0.999)}
        print(f"{name + ' forward':<30}{n / seconds:>10.1f}   ({raw_s / seconds:.2f}x; cosine "
              f"to fp32 min {cos.min():.5f}, mean {cos.mean():.5f}"
              f"{'' if cos.min() >= 0.999 else ': refused'})")
    onnx_full_s = full_path(texts, labels, args.batch_size, runtime="onnx")
    result["prelabel_onnx_items_per_s"] = n / onnx_full_s
    result["prelabel_onnx_vs_raw_torch"] = raw_s / onnx_full_s
    print(f"{'labelloop prelabel, onnx':<30}{n / onnx_full_s:>10.1f}   "
          f"({raw_s / onnx_full_s:.2f}x raw torch)")
    result["smoothing"] = smoothing_cost(fp32, n / full_s)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
