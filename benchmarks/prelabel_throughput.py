"""Pre-label throughput: the full pre-label path against the raw encoder's forward pass.

Full path = cached-embedding lookup + MiniLM forward for missing items + classifier head +
prediction rows written to a SQLite store. Raw = the same texts through ``Encoder.forward``
at the same batch size, nothing else. Also the faster runtimes -- torch int8, ONNX Runtime fp32
and ONNX Runtime int8 -- with their speed, their cosine to fp32 torch and what they change
downstream (issue 15): on a seeded sample of each public set (AG News, BANKING77, emotion),
heads trained the product's way (C=10, neighbour smoothing k=10) on half of it, each on its
own runtime's vectors, compared on the other half -- argmax agreement with fp32 torch's head
and macro-F1 (``prelabel.runtime_check``). A runtime passes with agreement >= 0.995 and a
macro-F1 drop <= 0.005 on every set. A row of fp32 torch at batch size 16 (vectors equal to
float rounding) shows the measure's noise floor. Then what the run-time check
(``load_checked``) decides for each runtime, and the full path with the ONNX runtime.
Speeds are the best of ``--rounds`` passes taken in turns; the JSON keeps the load average.

    python benchmarks/prelabel_throughput.py [--n 3000] [--batch-size 64] [--rounds 2]
        [--quality-n 3000] [--sets ag_news banking77 emotion]

Prints the tables and writes benchmarks/results/prelabel_throughput.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from labelloop.access.projects import create_project
from labelloop.core.settings import DEFAULT_ENCODER, Settings
from labelloop.demo import demo_data
from labelloop.ingest.service import ingest_file
from labelloop.prelabel.encoders import load_encoder
from labelloop.prelabel.runtime_check import MAX_F1_DROP, MIN_AGREEMENT, compare_runtimes
from labelloop.prelabel.service import encoder_for, prelabel_project
from labelloop.store.db import open_session

OUT = Path(__file__).parent / "results" / "prelabel_throughput.json"
VARIANTS = (("torch", True), ("onnx", False), ("onnx", True))


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


def public_sample(name: str, n: int) -> tuple[list[str], np.ndarray] | None:
    """A seeded sample of ``n`` texts and labels of a public set; None (said why) without
    the shared data."""
    from label_efficiency import DATA, READERS

    if not DATA.is_dir():
        print(f"{name}: skipped, no public data at {DATA}")
        return None
    texts, labels = READERS[name](DATA)
    keep = np.sort(np.random.default_rng(0).permutation(len(texts))[:n])
    return [texts[i] for i in keep], np.asarray(labels)[keep]


FLOOR = "torch fp32 b16"  # fp32 torch again, batch 16: what float rounding alone changes


def downstream(sets: list[str], n: int, batch_size: int) -> dict:
    """{set: {runtime: RuntimeComparison as a dict}} -- each faster runtime against fp32
    torch on ``n`` texts of each public set (fp32 vectors cached, label_efficiency's cache),
    and ``FLOOR``: the same fp32 torch at another batch size, whose vectors differ only by
    float rounding (padding changes the matrix shapes), as the measure's noise floor."""
    from label_efficiency import cached_embeddings

    out: dict = {}
    for name in sets:
        sample = public_sample(name, n)
        if sample is None:
            continue
        texts, y = sample
        fp32 = cached_embeddings(f"{name}_sample", texts)
        out[name] = {"n_texts": len(texts)}
        for runtime, quantize, size in (("torch", False, 16), *((r, q, batch_size)
                                                                for r, q in VARIANTS)):
            vectors = load_encoder(quantize=quantize, runtime=runtime).encode(
                texts, batch_size=size)
            key = FLOOR if size != batch_size else label(runtime, quantize)
            out[name][key] = compare_runtimes(fp32, vectors, y,
                                              n_train=len(texts) // 2).to_dict()
    return out


def label(runtime: str, quantize: bool) -> str:
    return f"{runtime} {'int8' if quantize else 'fp32'}"


def print_quality(result: dict, quality: dict) -> dict[str, bool]:
    """The throughput table with each runtime's downstream figures; {runtime: passes all}."""
    sets = list(quality)
    print("\n" + f"{'runtime':<15}{'items/s':>8}{'speedup':>9}  " + "".join(
        f"| {name + ' (n=' + str(quality[name]['n_texts']) + ')':<31}" for name in sets)
        + "| passes")
    print(f"{'':<34}" + "| agree  same   macro-F1 (diff)  " * len(sets))
    passes: dict[str, bool] = {}
    for name in ("torch fp32", FLOOR, *(label(*v) for v in VARIANTS)):
        speed = (result["variants"].get(name) if name != "torch fp32" else
                 {"items_per_s": result["raw_forward_items_per_s"], "speedup": 1.0})
        cells = []
        for data in sets:
            row = quality[data].get(name)
            if row is None:  # fp32 torch itself: the reference
                ref = quality[data][FLOOR]["f1_reference"]
                row = {"agreement": 1.0, "same_head_agreement": 1.0, "f1_candidate": ref,
                       "f1_drop": 0.0, "passes": True}
            cells.append(f"| {row['agreement']:.4f} {row['same_head_agreement']:.4f} "
                         f"{row['f1_candidate']:.4f} ({0.0 - row['f1_drop']:+.4f}) ")
        passes[name] = bool(sets) and all(quality[d].get(name, {"passes": True})["passes"]
                                          for d in sets)
        rate = (f"{speed['items_per_s']:>8.1f}{speed['speedup']:>8.2f}x" if speed
                else f"{'-':>8}{'-':>9}")
        print(f"{name:<15}{rate}  " + "".join(cells) + f"| {'yes' if passes[name] else 'no'}")
    print(f"agree: a head trained on the runtime's own vectors gives fp32's label; same: "
          f"fp32's head does on the runtime's vectors. Pass: both >= {MIN_AGREEMENT} and a "
          f"macro-F1 drop <= {MAX_F1_DROP} on every set (C=10, smoothing k=10, a seeded half "
          f"of each sample labeled, the other half predicted). {FLOOR}: fp32 torch at batch "
          "size 16, vectors equal to float rounding -- the noise floor of the measure.")
    return passes


def runtime_check() -> dict:
    """What ``load_checked`` decides at run time: each runtime on the packaged probe."""
    from labelloop.prelabel.encoders import compare_to_fp32, fp32_probe, probe_sample

    texts, labels = probe_sample()
    out = {}
    for runtime, quantize in VARIANTS:
        comparison = compare_to_fp32(load_encoder(quantize=quantize, runtime=runtime),
                                     fp32_probe(DEFAULT_ENCODER, "auto"), texts, labels)
        out[label(runtime, quantize)] = comparison.to_dict()
        print(f"run-time check, {label(runtime, quantize)}: "
              f"{'taken' if comparison.passes else 'refused'} ({comparison})")
    return out


def timed_forwards(texts: list[str], batch_size: int, rounds: int,
                   ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Seconds (best of ``rounds``) of the raw forward over ``texts`` per runtime, fp32 torch
    first, the runtimes taking turns in each round (a shared CPU's load falls on all alike);
    and each runtime's vectors."""
    runtimes = (("torch", False), *VARIANTS)
    for runtime, quantize in runtimes:  # load / export and warm outside the timings
        raw_forward(texts[:128], batch_size, quantize, runtime)
    seconds: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for runtime, quantize in runtimes:
            name = label(runtime, quantize)
            took, vectors[name] = raw_forward(texts, batch_size, quantize, runtime)
            seconds[name] = min(took, seconds.get(name, took))
    return seconds, vectors


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
    ap.add_argument("--rounds", type=int, default=2, help="timed passes per runtime, best kept")
    ap.add_argument("--quality-n", type=int, default=3000,
                    help="texts sampled from each public set for the downstream check (0: skip)")
    ap.add_argument("--sets", nargs="+", default=["ag_news", "banking77", "emotion"])
    args = ap.parse_args()
    texts, labels = texts_and_labels(args.n)
    seconds, vectors = timed_forwards(texts, args.batch_size, args.rounds)
    raw_s, fp32 = seconds["torch fp32"], vectors["torch fp32"]
    full_s = full_path(texts, labels, args.batch_size)
    n = len(texts)
    result: dict = {
        "n_texts": n, "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
        "raw_forward_items_per_s": n / raw_s, "prelabel_items_per_s": n / full_s,
        "prelabel_vs_raw": raw_s / full_s, "variants": {},
    }
    print(f"{'path':<30}{'items/s':>10}   (best of {args.rounds} rounds; load average "
          f"{result['load_average_1min']:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'raw encoder forward (torch)':<30}{n / raw_s:>10.1f}")
    print(f"{'labelloop prelabel (store)':<30}{n / full_s:>10.1f}   "
          f"({100 * raw_s / full_s:.1f}% of raw)")
    for runtime, quantize in VARIANTS:
        name = label(runtime, quantize)
        cos = (fp32 * vectors[name]).sum(axis=1)
        result["variants"][name] = {
            "items_per_s": n / seconds[name], "speedup": raw_s / seconds[name],
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            "within_0999": bool(cos.min() >= 0.999)}
        print(f"{name + ' forward':<30}{n / seconds[name]:>10.1f}   ({raw_s / seconds[name]:.2f}x;"
              f" cosine to fp32 min {cos.min():.5f}, mean {cos.mean():.5f})")
    if args.quality_n:
        result["quality"] = downstream(args.sets, args.quality_n, args.batch_size)
        result["passes"] = print_quality(result, result["quality"])
    result["runtime_check"] = runtime_check()
    encoder_for(Settings(runtime="onnx"))  # export and check as full_path will, untimed
    onnx_full_s = full_path(texts, labels, args.batch_size, runtime="onnx")
    result["prelabel_onnx_items_per_s"] = n / onnx_full_s
    result["prelabel_onnx_vs_raw_torch"] = raw_s / onnx_full_s
    result["prelabel_onnx_vs_prelabel_torch"] = full_s / onnx_full_s
    print(f"{'labelloop prelabel, onnx':<30}{n / onnx_full_s:>10.1f}   "
          f"({full_s / onnx_full_s:.2f}x the fp32 torch path)")
    result["smoothing"] = smoothing_cost(fp32, n / full_s)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
