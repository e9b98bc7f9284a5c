"""Labels needed to reach 95% / 98% of full-data macro-F1, per strategy, on public data.

    python benchmarks/label_efficiency.py                  # AG News test set (7,600 items)
    python benchmarks/label_efficiency.py --data banking77 # BANKING77 train+test (13,083)
    python benchmarks/label_efficiency.py --data emotion   # emotion train (16,000)

AG News: seed 40, batches of 40, budget 800; BANKING77: seed 100, batches of 100, budget
2,000; both 3 repeats, 20% stratified test split, MiniLM embeddings cached under
benchmarks/results/cache/. Prints a table and writes benchmarks/results/
label_efficiency_<data>.json and .png. ``--finetune`` adds fine-tuning to the pipeline row,
as the product's retrain runs it (``labelloop simulate`` does so by default).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
STRATEGIES = {"ag_news": ["default", "margin", "modal-margin", "modal-entropy",
                          "modal-ranked-batch", "random"],
              # modAL's ranked batch would need hours here (O(batch * pool * labeled) per round
              # in Python loops); the notes did not run it either.
              "banking77": ["default", "margin", "modal-margin", "modal-entropy", "random"],
              "emotion": ["default", "margin", "modal-margin", "modal-entropy", "random"]}
SETTINGS = {"ag_news": {"seed_size": 40, "batch_size": 40, "budget": 800},
            "banking77": {"seed_size": 100, "batch_size": 100, "budget": 2000},
            "emotion": {"seed_size": 40, "batch_size": 40, "budget": 800}}


def read_ag_news(data: Path) -> tuple[list[str], list[int]]:
    """AG News test.csv: no header; class index 1-4, title, description."""
    texts, labels = [], []
    with (data / "ag_news" / "test.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            texts.append((row[1] + ". " + row[2]).replace("\\", " "))
            labels.append(int(row[0]))
    return texts, labels


def read_banking77(data: Path) -> tuple[list[str], list[str]]:
    """BANKING77 train.csv + test.csv (header text,category), concatenated."""
    texts, labels = [], []
    for part in ("train", "test"):
        with (data / "banking77" / f"{part}.csv").open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts.append(row["text"])
                labels.append(row["category"])
    return texts, labels


def read_emotion(data: Path, file: str = "train.txt") -> tuple[list[str], list[str]]:
    """emotion train.txt (16,000 rows; header ``text;label_name``, the label after the last
    ";"): six emotions of short messages, classes that are not topics."""
    texts, labels = [], []
    with (data / "emotion" / file).open(encoding="utf-8") as f:
        next(f)
        for line in f:
            text, _, label = line.rstrip("\n").rpartition(";")
            if text:
                texts.append(text)
                labels.append(label)
    return texts, labels


READERS = {"ag_news": read_ag_news, "banking77": read_banking77, "emotion": read_emotion}


def cached_embeddings(name: str, texts: list[str]) -> np.ndarray:
    """MiniLM embeddings of ``texts``, read from / written to results/cache/<name>_<digest>.npy."""
    from labelloop.prelabel.encoders import load_encoder, text_digest

    path = RESULTS / "cache" / f"{name}_{text_digest(texts)[:12]}.npy"
    if path.is_file():
        return np.load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    X = load_encoder().encode(texts, batch_size=64)  # noqa: N806
    np.save(path, X)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - start:.0f}s -> {path}")
    return X


AT = (200, 400, 600)  # budgets whose F1 the table shows


def f1_at(row: dict, labels: int) -> float | None:
    return next((p[1] for p in row["curve"] if p[0] == labels), None)


def print_table(results: dict) -> None:
    full = results["full_data_metric"]
    budget = max(p[0] for row in results["strategies"].values() for p in row["curve"])
    print(f"\n{results['dataset']}: {results['n_items']} items, full-data macro-F1 {full:.3f} "
          f"(95%: {0.95 * full:.3f}, 98%: {0.98 * full:.3f})")
    at = "".join(f"{'F1@' + str(n):>9}" for n in AT)
    print(f"{'strategy':<24} {'to 95%':>8} {'to 98%':>8}{at} {'final F1':>9} {'select s':>9}")
    for name, row in results["strategies"].items():
        cells = [f">{budget}" if row[k] is None else str(row[k])
                 for k in ("labels_to_95pct", "labels_to_98pct")]
        points = "".join("      n/a" if f1_at(row, n) is None else f"{f1_at(row, n):>9.3f}"
                         for n in AT)
        print(f"{name:<24} {cells[0]:>8} {cells[1]:>8}{points} {row['curve'][-1][1]:>9.3f} "
              f"{row['selection_seconds']:>9.2f}")
    target_table(results)


def labels_to_goal(row: dict, goal: float) -> int | None:
    return next((int(p[0]) for p in row["curve"] if p[1] >= goal), None)


def target_table(results: dict, reference: str = "modal-margin") -> None:
    """Issue 15's target: labels the pipeline needs to reach min(98% of full-data F1,
    ``reference``'s F1 at the budget), against ``reference`` and random."""
    rows = results["strategies"]
    if "pipeline" not in rows or reference not in rows:
        return
    full = results["full_data_metric"]
    goal = min(0.98 * full, rows[reference]["curve"][-1][1])
    need = {name: labels_to_goal(row, goal) for name, row in rows.items()}
    budget = rows["pipeline"]["curve"][-1][0]
    print(f"target min(98% of full, {reference} at {budget:.0f}) = {goal:.3f}; labels to it: "
          + ", ".join(f"{n} {'>' + str(int(budget)) if v is None else v}"
                      for n, v in need.items()))
    for other in (reference, "random"):
        if need.get("pipeline") and need.get(other):
            print(f"  pipeline / {other}: {need['pipeline'] / need[other]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(SETTINGS), default="ag_news")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strategies", nargs="+", default=None,
                        help="default: all of " + ", ".join(STRATEGIES["ag_news"]))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="suffix for the output file names")
    parser.add_argument("--finetune", action="store_true", help="the pipeline row fine-tunes "
                        "the encoder where retraining would (the product's default: "
                        "LABELLOOP_FINETUNE=auto; minutes per check on a CPU)")
    args = parser.parse_args()

    from labelloop.core.settings import Settings
    from labelloop.prelabel.encoders import resolve_model_path
    from labelloop.prelabel.finetune import Tuning
    from labelloop.selection.simulate import plot_curves, run_simulation

    texts, labels = READERS[args.data](DATA)
    X = cached_embeddings(args.data, texts)  # noqa: N806
    start = time.perf_counter()
    names = args.strategies or STRATEGIES[args.data]
    settings = Settings()
    tuning = Tuning(texts, base=resolve_model_path(settings.encoder),
                    min_labels=settings.finetune_min_labels,
                    steps=settings.finetune_steps) if args.finetune else None
    results = run_simulation(X, np.asarray(labels), names, repeats=args.repeats,
                             test_fraction=0.2, seed=args.seed, progress=print,
                             dataset=args.data, tuning=tuning, **SETTINGS[args.data])
    if tuning is not None:
        tuning.close()
        for check in tuning.checks:
            print(f"fine-tuning check at {check['labels']} labels: frozen "
                  f"{check['frozen_macro_f1']:.3f}, tuned {check['tuned_macro_f1']:.3f} -> "
                  f"{'tuned' if check['fine_tune'] else 'frozen'} ({check['seconds']:.0f} s)")
    print(f"simulation took {time.perf_counter() - start:.0f}s")
    print_table(results)
    stem = f"label_efficiency_{args.data}{args.tag}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2))
    plot_curves(results, RESULTS / f"{stem}.png")
    print(f"wrote {RESULTS / (stem + '.json')} and .png")


if __name__ == "__main__":
    main()
