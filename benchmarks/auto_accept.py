"""Auto-accept once 1,000 human labels exist: share accepted and its real accuracy.

For each data set and repeat: 100 random seed labels, then batches of 100 picked by the
``default`` strategy until 1,000 human labels; a logistic-regression head (C=10) on MiniLM
embeddings; thresholds calibrated exactly as the loop does (out-of-fold predictions on the
human labels, Clopper-Pearson lower bound >= target 0.98, per class where counts allow); then
the rest of the pool is routed: safety-critical predictions never auto-accepted. Reported: the
share of non-critical remaining items auto-accepted, their true accuracy, and a 5% audit's
accuracy with its 95% interval (the oracle answers the audit, as perfect annotators would).

    python benchmarks/auto_accept.py [--repeats 3] [--data banking77 ag_news]

Writes benchmarks/results/auto_accept.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

sys.path.insert(0, str(Path(__file__).parent))
from label_efficiency import DATA, cached_embeddings, read_ag_news, read_banking77  # noqa: E402

from labelloop.demo import CRITICAL, demo_data  # noqa: E402
from selection.auto_accept import audit_interval, auto_accept_mask, calibrate_thresholds  # noqa: E402
from selection.strategies import Pool, get_strategy  # noqa: E402

OUT = Path(__file__).parent / "results" / "auto_accept.json"


def load(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    if name == "banking77":
        texts, labels = read_banking77(demo_data().parent)
        critical = CRITICAL
    else:
        texts, labels = read_ag_news(DATA)
        critical = []
    names = sorted({str(lb) for lb in labels})
    y = np.array([names.index(str(lb)) for lb in labels])
    return cached_embeddings(name, texts), y, names, critical


def fit(x: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Probabilities over all k classes from an LR fitted on (x, y): a function of new rows."""
    model = LogisticRegression(C=10, max_iter=2000, random_state=seed).fit(x, y)

    def predict(z: np.ndarray) -> np.ndarray:
        out = np.zeros((len(z), k))
        out[:, model.classes_] = model.predict_proba(z)
        return out

    return predict


def one_run(x, y, k, critical_idx, seed, budget=1000, seed_size=100, batch=100):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(seed)
    labeled = rng.choice(len(y), seed_size, replace=False)
    strategy = get_strategy("default")
    while len(labeled) < budget:
        pool = np.setdiff1d(np.arange(len(y)), labeled)
        probs = fit(x[labeled], y[labeled], k, seed)(x[pool])
        picks = strategy.select(Pool(probs=probs, embeddings=x[pool]), batch, rng)
        labeled = np.concatenate([labeled, pool[picks]])
    oof = np.zeros((len(labeled), k))
    for a, b in KFold(5, shuffle=True, random_state=seed).split(labeled):
        oof[b] = fit(x[labeled[a]], y[labeled[a]], k, seed)(x[labeled[b]])
    pred = oof.argmax(1)
    thresholds = calibrate_thresholds(oof[np.arange(len(pred)), pred], pred,
                                      pred == y[labeled], target=0.98)
    rest = np.setdiff1d(np.arange(len(y)), labeled)
    probs = fit(x[labeled], y[labeled], k, seed)(x[rest])
    mask = auto_accept_mask(probs, thresholds, critical_idx, 0.2)
    truth, guess = y[rest], probs.argmax(1)
    noncritical = ~np.isin(truth, critical_idx)
    audit = rng.choice(np.flatnonzero(mask), max(1, int(0.05 * mask.sum())), replace=False) \
        if mask.any() else np.array([], dtype=int)
    ok = int((guess[audit] == truth[audit]).sum())
    leaked = int(np.isin(guess[mask], critical_idx).sum() + np.isin(truth[mask],
                                                                    critical_idx).sum())
    return {"auto_share_noncritical": float(mask.sum() / max(1, noncritical.sum())),
            "auto_true_accuracy": float((guess[mask] == truth[mask]).mean()) if mask.any()
            else None,
            "audit_n": len(audit), "audit_accuracy": ok / len(audit) if len(audit) else None,
            "audit_ci95": list(audit_interval(ok, len(audit))) if len(audit) else None,
            "global_threshold": thresholds.global_threshold,
            "critical_true_labels_auto_accepted": leaked}


def main() -> None:
    ap = argparse.ArgumentParser(description="auto-accept share and accuracy at 1,000 labels")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", nargs="+", default=["banking77", "ag_news"])
    args = ap.parse_args()
    results = {}
    for name in args.data:
        if name == "ag_news" and not (DATA / "ag_news").exists():
            print(f"skip {name}: {DATA / 'ag_news'} absent")
            continue
        x, y, names, critical = load(name)
        crit = np.array([names.index(c) for c in critical], dtype=int)
        start = time.perf_counter()
        runs = [one_run(x, y, len(names), crit, seed) for seed in range(args.repeats)]
        results[name] = {"runs": runs, "seconds": time.perf_counter() - start,
                         "mean_share": float(np.mean([r["auto_share_noncritical"]
                                                      for r in runs])),
                         "mean_true_accuracy": float(np.mean([r["auto_true_accuracy"] or 0
                                                              for r in runs]))}
        print(f"{name}: auto-accepted {100 * results[name]['mean_share']:.1f}% of non-critical "
              f"items, true accuracy {results[name]['mean_true_accuracy']:.4f}")
        for r in runs:
            print(f"   share {r['auto_share_noncritical']:.3f} true acc "
                  f"{r['auto_true_accuracy']} audit {r['audit_accuracy']} on {r['audit_n']} "
                  f"CI {r['audit_ci95']} threshold {r['global_threshold']:.3f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
