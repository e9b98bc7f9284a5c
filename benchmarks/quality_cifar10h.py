"""Quality stage on real human labels: CIFAR-10H (Peterson et al., ICCV 2019).

    python benchmarks/quality_cifar10h.py [--out benchmarks/results/quality_cifar10h.json]

1. Agreement over all 10,000 images from the real per-image counts (~51 labels each):
   Fleiss' kappa, Krippendorff's alpha (ours and the ``krippendorff`` package) and a
   1,000-replicate bootstrap interval of alpha.
2. Aggregation on a simulated crowd: 50 annotators drawn from each image's real label
   distribution (40 honest, 5 spammers answering at random, 5 biased: cat<->dog,
   automobile->truck), 5 votes per image. Reference = argmax of the real counts (the
   CIFAR-10 labels are not in the data). Majority, Dawid-Skene and one-coin, ours and
   crowd-kit's, timed.
3. Scale: all 511,000 real labels, spread over 70 simulated annotator ids.
4. Drift: the simulated crowd in 10 batches of 1,000 images; in the last two a new cohort
   of 5 careless annotators joins and the guideline moves to v2; ``detect_drift`` timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene, MajorityVote, OneCoinDawidSkene

from labelloop.quality.aggregation import AGGREGATORS, aggregate
from labelloop.quality.agreement import (
    alpha_bootstrap_ci,
    fleiss_kappa,
    krippendorff_alpha_from_counts,
)
from labelloop.quality.drift import detect_drift

ROOT = Path(__file__).resolve().parents[1]
COUNTS = ROOT.parent / "shared" / "data" / "cifar10h" / "cifar10h-counts.npy"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
CAT, DOG, CAR, TRUCK = 3, 5, 1, 9
SEED = 0


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def simulated_crowd(counts: np.ndarray, rng: np.random.Generator, n_annotators: int = 50,
                    per_item: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes ``(item, annotator, label)``: honest annotators sample the image's real
    label distribution; ids 40-44 answer at random; 45-49 swap cat/dog, car->truck."""
    n_items, k = counts.shape
    item = np.repeat(np.arange(n_items), per_item)
    annotator = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :per_item].ravel()
    cum = np.cumsum(counts / counts.sum(axis=1, keepdims=True), axis=1)[item]
    label = (rng.random(item.size)[:, None] > cum).sum(axis=1).clip(max=k - 1)
    spam = (annotator >= 40) & (annotator < 45)
    label[spam] = rng.integers(0, k, spam.sum())
    biased = annotator >= 45
    swapped = {CAT: DOG, DOG: CAT, CAR: TRUCK}
    label[biased] = np.array([swapped.get(int(lb), int(lb)) for lb in label[biased]])
    return item, annotator, label


def agreement_section(counts: np.ndarray) -> dict[str, Any]:
    fleiss, t_fleiss = timed(lambda: fleiss_kappa(counts))
    alpha, t_alpha = timed(lambda: krippendorff_alpha_from_counts(counts))
    ref, t_ref = timed(lambda: krippendorff.alpha(value_counts=counts,
                                                  level_of_measurement="nominal"))
    ci, t_ci = timed(lambda: alpha_bootstrap_ci(counts, n_boot=1000, seed=SEED))
    n_i = counts.sum(axis=1)
    pct = float(np.mean(((counts * (counts - 1)).sum(axis=1)) / (n_i * (n_i - 1))))
    return {"n_items": int(counts.shape[0]), "n_labels": int(counts.sum()),
            "percent_agreement": pct, "fleiss_kappa": fleiss, "krippendorff_alpha": alpha,
            "krippendorff_alpha_package": float(ref), "alpha_ci95": list(ci),
            "seconds": {"fleiss_kappa": t_fleiss, "krippendorff_alpha": t_alpha,
                        "krippendorff_package": t_ref, "alpha_bootstrap_1000": t_ci}}


def aggregation_section(counts: np.ndarray, item: np.ndarray, annotator: np.ndarray,
                        label: np.ndarray) -> list[dict[str, Any]]:
    n_items, k = counts.shape
    reference = counts.argmax(axis=1)
    rows = []
    for method in AGGREGATORS:
        result, seconds = timed(lambda m=method: aggregate(m, item, annotator, label, n_items, k))
        rows.append({"impl": "labelloop", "method": method, "seconds": seconds,
                     "accuracy_vs_reference": float(np.mean(result.labels == reference)),
                     "n_iter": result.n_iter,
                     "mean_quality_honest": float(np.nanmean(result.annotator_quality[:40])),
                     "mean_quality_spammers": float(np.mean(result.annotator_quality[40:45])),
                     "mean_quality_biased": float(np.mean(result.annotator_quality[45:]))})
    frame = pd.DataFrame({"task": item, "worker": annotator, "label": label})
    for method, model in (("majority", MajorityVote()), ("dawid-skene", DawidSkene(n_iter=100)),
                          ("one-coin", OneCoinDawidSkene(n_iter=100))):
        labels, seconds = timed(lambda m=model: m.fit_predict(frame))
        theirs = labels.sort_index().to_numpy()
        rows.append({"impl": "crowd-kit", "method": method, "seconds": seconds,
                     "accuracy_vs_reference": float(np.mean(theirs == reference))})
    return rows


def scale_section(counts: np.ndarray, rng: np.random.Generator) -> list[dict[str, Any]]:
    """All real labels, each image's labels given to distinct ids out of 70."""
    n_items, k = counts.shape
    per_item = counts.sum(axis=1)
    item = np.repeat(np.arange(n_items), per_item)
    label = np.concatenate([np.repeat(np.arange(k), row) for row in counts])
    order = np.argsort(rng.random((n_items, 70)), axis=1)
    pos = np.arange(item.size) - np.repeat(np.cumsum(per_item) - per_item, per_item)
    annotator = order[item, pos]
    reference = counts.argmax(axis=1)
    rows = []
    for method in AGGREGATORS:
        result, seconds = timed(lambda m=method: aggregate(m, item, annotator, label, n_items, k))
        rows.append({"method": method, "n_votes": int(item.size), "seconds": seconds,
                     "n_iter": result.n_iter,
                     "accuracy_vs_reference": float(np.mean(result.labels == reference))})
    return rows


def drift_section(counts: np.ndarray, item: np.ndarray, annotator: np.ndarray,
                  label: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    n_items, k = counts.shape
    batch = item // 1000
    late = batch >= 8
    # a new cohort (ids 50-54) takes a third of the late votes, half of them careless
    newcomer = late & (rng.random(item.size) < 1 / 3)
    annotator = np.where(newcomer, 50 + rng.integers(0, 5, item.size), annotator)
    careless = newcomer & (rng.random(item.size) < 0.5)
    label = np.where(careless, rng.integers(0, k, item.size), label)
    consensus = aggregate("dawid-skene", item, annotator, label, n_items, k).labels
    reference = counts.argmax(axis=1)
    gold = item % 10 == 0
    records = [{"batch": int(b), "annotator": f"ann{a:02d}", "label": CLASSES[lb],
                "guideline_version": "v2" if b >= 8 else "v1",
                "correct": bool(lb == reference[i]) if g else None,
                "agrees_with_consensus": bool(lb == consensus[i])}
               for i, a, lb, b, g in zip(item, annotator, label, batch, gold, strict=True)]
    findings, seconds = timed(lambda: detect_drift(records, baseline_batches=range(8)))
    return {"n_records": len(records), "seconds": seconds,
            "findings": [{"metric": f.metric, "baseline": f.baseline, "current": f.current,
                          "drop": f.drop, "causes": f.causes, "message": f.message}
                         for f in findings]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "quality_cifar10h.json")
    args = parser.parse_args()
    if not COUNTS.exists():
        raise SystemExit(f"CIFAR-10H counts not found at {COUNTS}; this benchmark needs "
                         "../shared/data/cifar10h")
    counts = np.load(COUNTS)
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()

    agreement = agreement_section(counts)
    item, annotator, label = simulated_crowd(counts, rng)
    aggregation = aggregation_section(counts, item, annotator, label)
    scale = scale_section(counts, rng)
    drift = drift_section(counts, item, annotator, label, rng)
    total = time.perf_counter() - started

    print(f"CIFAR-10H: {agreement['n_items']} images, {agreement['n_labels']} human labels")
    print(f"  percent agreement {agreement['percent_agreement']:.4f}   "
          f"Fleiss kappa {agreement['fleiss_kappa']:.4f}   "
          f"Krippendorff alpha {agreement['krippendorff_alpha']:.4f} "
          f"(package {agreement['krippendorff_alpha_package']:.4f}, "
          f"95% CI {agreement['alpha_ci95'][0]:.4f}-{agreement['alpha_ci95'][1]:.4f})")
    sec = agreement["seconds"]
    print(f"  seconds: fleiss {sec['fleiss_kappa']:.4f}, alpha {sec['krippendorff_alpha']:.4f}, "
          f"package alpha {sec['krippendorff_package']:.4f}, "
          f"bootstrap x1000 {sec['alpha_bootstrap_1000']:.2f}")
    print(f"\nSimulated crowd: {item.size} votes, 50 annotators (5 spammers, 5 biased)")
    print(f"  {'impl':<10} {'method':<12} {'accuracy':>9} {'seconds':>8}")
    for row in aggregation:
        print(f"  {row['impl']:<10} {row['method']:<12} {row['accuracy_vs_reference']:>9.4f} "
              f"{row['seconds']:>8.3f}")
    print(f"\nScale: all {scale[0]['n_votes']} real labels, 70 annotator ids")
    for row in scale:
        print(f"  {row['method']:<12} {row['accuracy_vs_reference']:>9.4f} {row['seconds']:>8.3f}"
              f"  ({row['n_iter']} iterations)")
    print(f"\nDrift: {drift['n_records']} records, detect_drift {drift['seconds']:.3f} s")
    for f in drift["findings"]:
        print(f"  {f['message']}")
        for cause in f["causes"]:
            print(f"    - {cause}")
    print(f"\ntotal {total:.1f} s")

    result = {"data": str(COUNTS.relative_to(ROOT.parent)), "seed": SEED,
              "machine": {"python": platform.python_version(), "numpy": np.__version__,
                          "cpus": os.cpu_count()},
              "agreement": agreement, "aggregation": aggregation, "scale": scale,
              "drift": drift, "total_seconds": total}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
