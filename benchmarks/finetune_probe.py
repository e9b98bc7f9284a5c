"""What fine-tuning the encoder buys: frozen MiniLM recipes against SetFit, random labels.

For each data set and label count: draw that many random labeled rows from a training split,
fit (a) logistic regression on frozen MiniLM embeddings, (b) the same on neighbour-smoothed
embeddings (k 10, the training split as neighbours), (c) logistic regression on the
embeddings of MiniLM fine-tuned by ``prelabel.finetune.fine_tune`` (SetFit, ``--steps``
contrastive steps of 16 pairs) on those labels; report macro-F1 on a held-out test sample
and seconds. Also the holdout check the recipe would run (``holdout_check``) at each size.

    python benchmarks/finetune_probe.py [--data emotion ag_news] [--labels 60 200 480]

Writes benchmarks/results/finetune_probe.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from label_efficiency import DATA, READERS, cached_embeddings  # noqa: E402

from labelloop.prelabel.encoders import load_encoder, resolve_model_path  # noqa: E402
from labelloop.prelabel.finetune import fine_tune, holdout_check  # noqa: E402
from labelloop.prelabel.smoothing import NeighbourSmoothing  # noqa: E402

OUT = Path(__file__).parent / "results" / "finetune_probe.json"


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    return float(f1_score(y, pred, average="macro"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["emotion"], choices=sorted(READERS))
    parser.add_argument("--labels", nargs="+", type=int, default=[60, 200, 480])
    parser.add_argument("--test", type=int, default=2000, help="test rows scored")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="also run holdout_check")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"no {DATA}: the public data sets are needed")
    base = resolve_model_path("minilm")
    results = []
    for name in args.data:
        texts, labels = READERS[name](DATA)
        x = cached_embeddings(name, texts)
        y = np.asarray(labels)
        train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                       random_state=args.seed)
        test = np.random.default_rng(args.seed).choice(test, min(args.test, len(test)),
                                                       replace=False)
        smoothing = NeighbourSmoothing(x[train], k=10)
        z_test = smoothing.transform(x[test])
        for n in args.labels:
            rng = np.random.default_rng([args.seed, n])
            picked = rng.choice(train, n, replace=False)
            frozen = LogisticRegression(C=10, max_iter=2000).fit(x[picked], y[picked])
            smoothed = LogisticRegression(C=10, max_iter=2000).fit(
                smoothing.transform(x[picked]), y[picked])
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                tuned = fine_tune([texts[i] for i in picked], y[picked], base=base,
                                  out=Path(tmp) / "enc", seed=args.seed, max_steps=args.steps)
                tune_s = time.perf_counter() - start
                enc = load_encoder(str(tuned))
                zt = enc.encode([texts[i] for i in picked])
                ze = enc.encode([texts[i] for i in test])
            head = LogisticRegression(C=10, max_iter=2000).fit(zt, y[picked])
            row = {"data": name, "labels": n, "frozen": f1(y[test], frozen.predict(x[test])),
                   "smoothed_k10": f1(y[test], smoothed.predict(z_test)),
                   "setfit": f1(y[test], head.predict(ze)), "fine_tune_seconds": tune_s,
                   "steps": args.steps}
            if args.check:
                xs, ys = x[picked], y[picked]

                def frozen_predict(fit_idx: np.ndarray, held: np.ndarray,
                                   xs: np.ndarray = xs, ys: np.ndarray = ys) -> np.ndarray:
                    model = LogisticRegression(C=10, max_iter=2000)
                    return model.fit(xs[fit_idx], ys[fit_idx]).predict(xs[held])

                check = holdout_check([texts[i] for i in picked], y[picked], base=base,
                                      frozen_predict=frozen_predict, seed=args.seed,
                                      max_steps=args.steps)
                row["holdout_check"] = check.to_json()
            results.append(row)
            print(json.dumps(row), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"{'data':<10} {'labels':>6} {'frozen':>7} {'smooth':>7} {'setfit':>7} {'tune s':>7}")
    for r in results:
        print(f"{r['data']:<10} {r['labels']:>6} {r['frozen']:>7.3f} {r['smoothed_k10']:>7.3f} "
              f"{r['setfit']:>7.3f} {r['fine_tune_seconds']:>7.0f}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
