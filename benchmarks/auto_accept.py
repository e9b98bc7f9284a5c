"""Auto-accept once 1,000 human labels exist: share accepted and its real accuracy, run by run.

The promise is per project: the labels a project auto-accepts are at least ``--target``
(0.98) accurate. Each repeat (seed) is one project, so the benchmark counts the runs that
keep it (at least 9 of 10 are needed) and prints every run.

For each data set and repeat, the loop as the product runs it: 100 random seed labels, then
batches of 100 -- 10 drawn uniformly from the non-critical pool (the calibration sample,
``project.calibration_share`` = 0.1) and 90 picked by the ``default`` strategy -- until 1,000
human labels; a logistic-regression head (C=10) on MiniLM embeddings, neighbour-smoothed as
the product's pre-labeler reads them (``--smoothing-k``, 10; 0 for raw embeddings). Thresholds:

- "pool-bound" (the product's method once 50 calibration rows exist,
  ``selection.auto_accept.pool_estimate``): a temperature and a label-noise rate fitted on the
  calibration rows' out-of-fold predictions and on bootstrap resamples of them; the lowest
  threshold whose accepted pool items have a one-sided 90% lower bound >= target;
- "point-estimate" (for comparison, what the bound starts from): the temperature alone, the
  lowest threshold whose accepted pool items' mean calibrated confidence is >= target
  (``selection.auto_accept.estimated_thresholds``);
- "certified" (the fallback): Clopper-Pearson lower bound >= target on out-of-fold
  predictions of every human label.

Then the rest of the pool is routed (safety-critical never auto-accepted). Reported per run:
share of non-critical remaining items auto-accepted, their true accuracy, whether the run
keeps the promise (a run that accepts nothing keeps it: nothing is promised), safety-critical
items auto-accepted (by prediction, which must be 0, and by true label), a 5% audit's accuracy
with its 95% interval (the oracle answers, as perfect annotators would), and the "oracle
share": the largest share of the most confident non-critical items whose true accuracy is >=
target, i.e. what any threshold could reach on these data (items in order of raw confidence,
and, per run, in the order the thresholds read them: calibrated confidence).

    OMP_NUM_THREADS=1 python benchmarks/auto_accept.py --repeats 10 --data banking77 ag_news

(one BLAS thread: faster on a shared 2-core machine, and the same picks run to run). Writes
benchmarks/results/auto_accept.json, replacing the entries of the data sets it ran.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

sys.path.insert(0, str(Path(__file__).parent))
from label_efficiency import DATA, cached_embeddings, read_ag_news, read_banking77  # noqa: E402

from labelloop.demo import CRITICAL, demo_data  # noqa: E402
from labelloop.prelabel.calibration import fit_temperature, temperature_scaled  # noqa: E402
from labelloop.selection.auto_accept import (  # noqa: E402
    Thresholds,
    audit_interval,
    auto_accept_mask,
    calibrate_thresholds,
    critical_mask,
    estimated_thresholds,
    pool_estimate,
    tighten,
)
from labelloop.selection.strategies import Pool, get_strategy  # noqa: E402
from labelloop.training.out_of_fold import CALIBRATION_FOLDS  # noqa: E402

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


@dataclass
class LoopEnd:
    """What the loop leaves at ``budget`` human labels, for the thresholds to be set on.

    probs: (m, k) the final model on the m remaining pool items, truth: (m,) their labels;
    cal_probs: (r, k) out-of-fold probabilities of the r random (calibration) rows, cal_y: (r,).
    """

    probs: np.ndarray
    truth: np.ndarray
    cal_probs: np.ndarray
    cal_y: np.ndarray
    oof: np.ndarray  # (n, k) out-of-fold probabilities of every human label
    y: np.ndarray  # (n,) their labels


def run_loop(x, feats, y, k, critical_idx, seed, budget=1000, seed_size=100,  # noqa: ANN001
             batch=100, calibration_share=0.1) -> LoopEnd:
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
    return LoopEnd(probs=probs, truth=y[rest], cal_probs=oof[is_random],
                   cal_y=y[labeled][is_random], oof=oof, y=y[labeled])


METHODS = ("pool-bound", "point-estimate", "certified")


def one_run(end: LoopEnd, critical_idx: np.ndarray, seed: int,  # noqa: ANN201
            target: float = 0.98):
    """Thresholds set on ``end`` by each method, routed over the rest of the pool."""
    rng = np.random.default_rng(seed)
    probs, truth, guess = end.probs, end.truth, end.probs.argmax(1)
    noncritical = ~critical_mask(probs, critical_idx)
    right = (guess == truth)[noncritical]
    pred = end.oof.argmax(1)
    certified = calibrate_thresholds(end.oof[np.arange(len(pred)), pred], pred,
                                     pred == end.y, target=target)
    start = time.perf_counter()
    bound, check = pool_estimate(probs, end.cal_probs, end.cal_y, critical_idx, target)
    bound_seconds = time.perf_counter() - start
    calibrated = temperature_scaled(probs[noncritical], bound.temperature).max(1)
    out = {"seed": seed, "n_calibration_rows": len(end.cal_y),
           "oracle_share": _oracle_share(probs.max(1)[noncritical], right, target),
           # the same, items in the order the bound's thresholds accept them
           "oracle_share_calibrated": _oracle_share(calibrated, right, target)}
    temperature = fit_temperature(np.log(np.clip(end.cal_probs, 1e-12, 1.0)), end.cal_y)
    point = estimated_thresholds(probs, temperature, critical_idx, target,
                                 classes=set(bound.per_class))  # the bound's classes
    for name, thresholds in zip(METHODS, (bound, point, certified), strict=True):
        out[name] = _routed(thresholds, probs, truth, critical_idx, noncritical, target, rng)
    out["pool-bound"] |= {"calibration_check": check["calibration_check"],
                          "bound": check["bound"], "seconds": bound_seconds}
    return out


def _oracle_share(confidence: np.ndarray, right: np.ndarray, target: float) -> float:
    """The largest share of the most confident items whose accuracy is >= target."""
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(right[order]) / np.arange(1, order.size + 1)
    ok_prefix = np.flatnonzero(running >= target)
    return float((ok_prefix[-1] + 1) / order.size) if ok_prefix.size else 0.0


def _routed(thresholds: Thresholds, probs: np.ndarray, truth: np.ndarray,  # noqa: ANN202
            critical_idx: np.ndarray, noncritical: np.ndarray, target: float,
            rng: np.random.Generator):
    """What ``thresholds`` accept of the pool, how right it is, and a 5% audit of it."""
    guess = probs.argmax(1)
    mask = auto_accept_mask(probs, thresholds, critical_idx, 0.2)
    audit = rng.choice(np.flatnonzero(mask), max(1, int(0.05 * mask.sum())),
                       replace=False) if mask.any() else np.array([], dtype=int)
    ok = int((guess[audit] == truth[audit]).sum())
    accuracy = float((guess[mask] == truth[mask]).mean()) if mask.any() else None
    return {
        "auto_share_noncritical": float(mask.sum() / max(1, noncritical.sum())),
        "auto_n": int(mask.sum()),
        "auto_true_accuracy": accuracy,
        "meets_target": accuracy is None or accuracy >= target,
        "audit_n": len(audit), "audit_accuracy": ok / len(audit) if len(audit) else None,
        "audit_ci95": list(audit_interval(ok, len(audit))) if len(audit) else None,
        "audit_tightened": tighten(thresholds, ok, len(audit)) != thresholds,
        "global_threshold": thresholds.global_threshold,
        "per_class_thresholds": len(thresholds.per_class),
        "temperature": thresholds.temperature,
        "critical_true_labels_auto_accepted": int(np.isin(truth[mask], critical_idx).sum()),
        "critical_predictions_auto_accepted": int(np.isin(guess[mask], critical_idx).sum())}


def summarise(runs: list[dict], target: float) -> dict:  # type: ignore[type-arg]
    """Per method: runs keeping the promise, shares, accuracies, critical items accepted."""
    out = {}
    for method in METHODS:
        rows = [r[method] for r in runs]
        shares = [r["auto_share_noncritical"] for r in rows]
        accs = [r["auto_true_accuracy"] for r in rows if r["auto_true_accuracy"] is not None]
        out[method] = {
            "runs": len(rows), "target": target,
            "runs_meeting_target": sum(r["meets_target"] for r in rows),
            "runs_accepting_nothing": sum(r["auto_true_accuracy"] is None for r in rows),
            "mean_share": float(np.mean(shares)), "min_share": float(np.min(shares)),
            "max_share": float(np.max(shares)),
            "mean_true_accuracy": float(np.mean(accs)) if accs else None,
            "min_true_accuracy": float(np.min(accs)) if accs else None,
            "critical_predictions_auto_accepted": sum(
                r["critical_predictions_auto_accepted"] for r in rows),
            "critical_true_labels_auto_accepted": sum(
                r["critical_true_labels_auto_accepted"] for r in rows)}
    return out


def _four(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def print_runs(name: str, runs: list[dict], summary: dict) -> None:  # type: ignore[type-arg]
    """One line per run (the product's "pool-bound", the point estimate beside it), then the
    count of runs keeping the promise, the shares and the critical items per method."""
    print(f"\n{name}: oracle share at target {np.mean([r['oracle_share'] for r in runs]):.3f} "
          f"(items by raw confidence), "
          f"{np.mean([r['oracle_share_calibrated'] for r in runs]):.3f} (by calibrated)")
    print(f"  {'seed':>4} {'share':>6} {'true acc':>8} {'kept':>4} {'crit':>4} {'est':>6} "
          f"{'bound':>6} {'T':>5} {'noise':>6} {'oracle':>6} | point-estimate: "
          f"{'share':>6} {'true acc':>8} {'kept':>4}")
    for r in runs:
        b, p = r["pool-bound"], r["point-estimate"]
        fit = b["bound"]
        print(f"  {r['seed']:>4} {b['auto_share_noncritical']:>6.3f} "
              f"{_four(b['auto_true_accuracy']):>8} {'yes' if b['meets_target'] else 'NO':>4} "
              f"{b['critical_predictions_auto_accepted']:>4} "
              f"{_four(fit['accuracy_estimated']):>6} {_four(fit['accuracy_bound']):>6} "
              f"{fit['temperature']:>5.2f} {fit['noise']:>6.4f} "
              f"{r['oracle_share_calibrated']:>6.3f} | {'':>15} "
              f"{p['auto_share_noncritical']:>6.3f} "
              f"{_four(p['auto_true_accuracy']):>8} {'yes' if p['meets_target'] else 'NO':>4}")
    for method in METHODS:
        s = summary[method]
        print(f"  {method}: {s['runs_meeting_target']} of {s['runs']} runs at or above "
              f"{s['target']} ({s['runs_accepting_nothing']} accepting nothing); mean share "
              f"{100 * s['mean_share']:.1f}% of non-critical items (min {100 * s['min_share']:.1f}"
              f"%, max {100 * s['max_share']:.1f}%), mean true accuracy "
              f"{_four(s['mean_true_accuracy'])}; safety-critical auto-accepted: "
              f"{s['critical_predictions_auto_accepted']} by prediction, "
              f"{s['critical_true_labels_auto_accepted']} by true label")


def main() -> None:
    ap = argparse.ArgumentParser(description="auto-accept share and accuracy at 1,000 labels")
    ap.add_argument("--repeats", type=int, default=10, help="runs (seeds 0..repeats-1)")
    ap.add_argument("--data", nargs="+", default=["banking77", "ag_news"])
    ap.add_argument("--target", type=float, default=0.98)
    ap.add_argument("--smoothing-k", type=int, default=10,
                    help="neighbours averaged into each embedding (0: raw embeddings)")
    args = ap.parse_args()
    from labelloop.prelabel.smoothing import NeighbourSmoothing

    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for name in args.data:
        if name == "ag_news" and not (DATA / "ag_news").exists():
            print(f"skip {name}: {DATA / 'ag_news'} absent")
            continue
        x, y, names, critical = load(name)
        crit = np.array([names.index(c) for c in critical], dtype=int)
        start = time.perf_counter()
        feats = NeighbourSmoothing(x, k=args.smoothing_k).transform(x) \
            if args.smoothing_k else x
        runs = [one_run(run_loop(x, feats, y, len(names), crit, seed), crit, seed,
                        args.target) for seed in range(args.repeats)]
        summary = summarise(runs, args.target)
        print_runs(name, runs, summary)
        results[name] = {**summary, "runs": runs, "seconds": time.perf_counter() - start,
                         "smoothing_k": args.smoothing_k,
                         "oracle_share": float(np.mean([r["oracle_share"] for r in runs])),
                         "oracle_share_calibrated": float(np.mean(
                             [r["oracle_share_calibrated"] for r in runs]))}
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
