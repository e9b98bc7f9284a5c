"""Auto-accept once 1,000 human labels exist: share accepted and its real accuracy.

For each data set and repeat, the loop as the product runs it: 100 random seed labels, then
batches of 100 -- 10 drawn uniformly from the non-critical pool (the calibration sample,
``project.calibration_share`` = 0.1) and 90 picked by the ``default`` strategy -- until 1,000
human labels; a logistic-regression head (C=10) on MiniLM embeddings, neighbour-smoothed as
the product's pre-labeler reads them (``--smoothing-k``, 10; 0 for raw embeddings). Thresholds:

- "pool-estimate" (the product's method once 50 calibration rows exist): temperature fitted
  on the calibration rows' out-of-fold predictions, thresholds from the pool's calibrated
  confidence, checked on the calibration rows (``selection.auto_accept.pool_estimate``);
- "certified" (the fallback): Clopper-Pearson lower bound >= target on out-of-fold
  predictions of every human label.

Then the rest of the pool is routed (safety-critical never auto-accepted). Reported: share of
non-critical remaining items auto-accepted, their true accuracy, a 5% audit's accuracy with
its 95% interval (the oracle answers, as perfect annotators would), and the "oracle share":
the largest share of the most confident non-critical items whose true accuracy is >= 0.98,
i.e. what any threshold could reach on these data.

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
from labelloop.selection.auto_accept import (  # noqa: E402
    audit_interval,
    auto_accept_mask,
    calibrate_thresholds,
    critical_mask,
    pool_estimate,
    tighten,
)
from labelloop.selection.strategies import Pool, get_strategy  # noqa: E402
from labelloop.training.service import CALIBRATION_FOLDS  # noqa: E402

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


def one_run(x, feats, y, k, critical_idx, seed, budget=1000, seed_size=100,  # noqa: ANN001, ANN201
            batch=100, calibration_share=0.1, target=0.98):
    """x: embeddings the strategy sees; feats: what the head reads (x, or x smoothed)."""
    rng = np.random.default_rng(seed)
    labeled = rng.choice(len(y), seed_size, replace=False)
    is_random = np.ones(seed_size, dtype=bool)
    strategy = get_strategy("default")
    n_cal = int(round(calibration_share * batch))
    while len(labeled) < budget:
        pool = np.setdiff1d(np.arange(len(y)), labeled)
        probs = fit(feats[labeled], y[labeled], k, seed)(feats[pool])
        free = np.flatnonzero(~critical_mask(probs, critical_idx))
        cal = rng.choice(free, n_cal, replace=False)
        rest = np.setdiff1d(np.arange(len(pool)), cal)
        picks = rest[strategy.select(Pool(probs=probs[rest], embeddings=x[pool[rest]]),
                                     batch - n_cal, rng)]
        labeled = np.concatenate([labeled, pool[picks], pool[cal]])
        is_random = np.r_[is_random, np.zeros(len(picks), bool), np.ones(n_cal, bool)]
    oof = np.zeros((len(labeled), k))
    for a, b in KFold(CALIBRATION_FOLDS, shuffle=True, random_state=seed).split(labeled):
        oof[b] = fit(feats[labeled[a]], y[labeled[a]], k, seed)(feats[labeled[b]])
    rest = np.setdiff1d(np.arange(len(y)), labeled)
    probs = fit(feats[labeled], y[labeled], k, seed)(feats[rest])
    truth, guess = y[rest], probs.argmax(1)
    noncritical = ~critical_mask(probs, critical_idx)
    order = np.argsort(-probs.max(1)[noncritical], kind="stable")
    running = np.cumsum((guess == truth)[noncritical][order]) / np.arange(1, order.size + 1)
    ok_prefix = np.flatnonzero(running >= target)
    out = {"n_calibration_rows": int(is_random.sum()),
           "oracle_share": float((ok_prefix[-1] + 1) / order.size) if ok_prefix.size else 0.0}
    pred = oof.argmax(1)
    certified = calibrate_thresholds(oof[np.arange(len(pred)), pred], pred,
                                     pred == y[labeled], target=target)
    estimated, check = pool_estimate(probs, oof[is_random], y[labeled][is_random],
                                     critical_idx, target)
    for name, thresholds in (("pool-estimate", estimated), ("certified", certified)):
        mask = auto_accept_mask(probs, thresholds, critical_idx, 0.2)
        audit = rng.choice(np.flatnonzero(mask), max(1, int(0.05 * mask.sum())),
                           replace=False) if mask.any() else np.array([], dtype=int)
        ok = int((guess[audit] == truth[audit]).sum())
        after = tighten(thresholds, ok, len(audit))
        out[name] = {
            "auto_share_noncritical": float(mask.sum() / max(1, noncritical.sum())),
            "auto_true_accuracy": float((guess[mask] == truth[mask]).mean()) if mask.any()
            else None,
            "audit_n": len(audit), "audit_accuracy": ok / len(audit) if len(audit) else None,
            "audit_ci95": list(audit_interval(ok, len(audit))) if len(audit) else None,
            "audit_tightened": after != thresholds,
            "global_threshold": thresholds.global_threshold,
            "temperature": thresholds.temperature,
            "critical_true_labels_auto_accepted": int(np.isin(truth[mask],
                                                              critical_idx).sum()),
            "critical_predictions_auto_accepted": int(np.isin(guess[mask],
                                                              critical_idx).sum())}
    out["pool-estimate"]["calibration_check"] = check["calibration_check"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="auto-accept share and accuracy at 1,000 labels")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", nargs="+", default=["banking77", "ag_news"])
    ap.add_argument("--smoothing-k", type=int, default=10,
                    help="neighbours averaged into each embedding (0: raw embeddings)")
    args = ap.parse_args()
    from labelloop.prelabel.smoothing import NeighbourSmoothing

    results = {}
    for name in args.data:
        if name == "ag_news" and not (DATA / "ag_news").exists():
            print(f"skip {name}: {DATA / 'ag_news'} absent")
            continue
        x, y, names, critical = load(name)
        crit = np.array([names.index(c) for c in critical], dtype=int)
        start = time.perf_counter()
        feats = NeighbourSmoothing(x, k=args.smoothing_k).transform(x) \
            if args.smoothing_k else x
        runs = [one_run(x, feats, y, len(names), crit, seed) for seed in range(args.repeats)]
        summary = {"runs": runs, "seconds": time.perf_counter() - start,
                   "smoothing_k": args.smoothing_k,
                   "oracle_share": float(np.mean([r["oracle_share"] for r in runs]))}
        print(f"{name}: oracle share at 0.98 {summary['oracle_share']:.3f}")
        for method in ("pool-estimate", "certified"):
            rows = [r[method] for r in runs]
            summary[method] = {
                "mean_share": float(np.mean([r["auto_share_noncritical"] for r in rows])),
                "mean_true_accuracy": float(np.mean([r["auto_true_accuracy"] or 0
                                                     for r in rows])),
                "runs_meeting_target": sum(1 for r in rows
                                           if (r["auto_true_accuracy"] or 0) >= 0.98)}
            print(f"  {method}: auto-accepted {100 * summary[method]['mean_share']:.1f}% of "
                  f"non-critical items, true accuracy {summary[method]['mean_true_accuracy']:.4f}")
            for r in rows:
                ci = "-" if r["audit_ci95"] is None else \
                    f"[{r['audit_ci95'][0]:.3f}, {r['audit_ci95'][1]:.3f}]"
                acc = "-" if r["auto_true_accuracy"] is None else f"{r['auto_true_accuracy']:.4f}"
                audit = "-" if r["audit_accuracy"] is None else f"{r['audit_accuracy']:.3f}"
                print(f"     share {r['auto_share_noncritical']:.3f} true acc {acc} audit "
                      f"{audit} on {r['audit_n']} CI {ci} tightened {r['audit_tightened']} "
                      f"T {r['temperature']:.2f}")
        results[name] = summary
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
