"""A retrain with fine-tuning, timed as a team waits for it: until the next batch is ready.

The product's own path, end to end (SQLite file, local MLflow store, the packaged MiniLM):
a project holds a data set's training split (``--labels`` of it labeled at random, the rest
the unlabeled pool) and its test split as the evaluation version. A first model on the frozen
encoder is live and has pre-labeled the pool, as in a running project. Then the timed part:

1. ``train_model`` with fine-tuning due (``finetune_min_labels`` = the labels): the frozen
   recipe, the holdout check (SetFit on two thirds, both sides scored on the last third),
   and where tuning wins the project's vectors under the tuned encoder and the new head;
2. ``prelabel_project`` of the pool with the new model, then ``next_batch`` of 100.

Prints each stage's seconds, the check's held-out macro-F1 of both sides, and the test
split's macro-F1 of the frozen model and of the new one; writes
benchmarks/results/finetune_retrain.json (one entry per data set, replaced on each run).

    python benchmarks/finetune_retrain.py --data banking77 emotion [--labels 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from label_efficiency import DATA, read_emotion  # noqa: E402

from labelloop.access.projects import create_project  # noqa: E402
from labelloop.core.settings import Settings  # noqa: E402
from labelloop.ingest.service import ingest_file  # noqa: E402
from labelloop.prelabel import tuned  # noqa: E402
from labelloop.prelabel.service import prelabel_project  # noqa: E402
from labelloop.selection.service import next_batch  # noqa: E402
from labelloop.store.db import open_session  # noqa: E402
from labelloop.training.service import train_model  # noqa: E402
from labelloop.versions.service import freeze_version  # noqa: E402

OUT = Path(__file__).parent / "results" / "finetune_retrain.json"
SETS = ("banking77", "emotion")


class Stages:
    """A ``Progress`` that notes when each stage starts (its description)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def __call__(self, description: str, total: int):  # noqa: ANN204
        self.marks.append((description, time.perf_counter()))
        return lambda n: None


def write_rows(path: Path, texts: list[str], labels: list[str] | None) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"] if labels is not None else ["text"])
        for i, text in enumerate(texts):
            w.writerow([text, labels[i]] if labels is not None else [text])
    return path


def splits(name: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(train texts, train labels, test texts, test labels) of BANKING77 or emotion."""
    import csv

    if name == "emotion":
        return *read_emotion(DATA, "train.txt"), *read_emotion(DATA, "test.txt")
    out: list[list[str]] = []
    for part in ("train", "test"):
        with (DATA / name / f"{part}.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        out += [[r["text"] for r in rows], [r["category"] for r in rows]]
    return out[0], out[1], out[2], out[3]


def run(name: str, n_labels: int, steps: int, seed: int, home: Path) -> dict:
    texts, labels, test_texts, test_labels = splits(name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    picked, rest = order[:n_labels], order[n_labels:]
    settings = Settings(home=home, show_progress=False, finetune="off")
    names = sorted(set(labels))
    with open_session(settings.db_url) as s:
        p = create_project(s, name, names)
        ingest_file(s, p, write_rows(home / "l.csv", [texts[i] for i in picked],
                                     [labels[i] for i in picked]), label_field="label")
        ingest_file(s, p, write_rows(home / "u.csv", [texts[i] for i in rest], None),
                    label_field=None)
        ingest_file(s, p, write_rows(home / "e.csv", test_texts, test_labels),
                    label_field="label", split="eval")
        train, ev = freeze_version(s, p), freeze_version(s, p, split="eval")
        start = time.perf_counter()
        frozen = train_model(s, p, settings, train=train, evaluation=ev, seed=seed)
        prelabel_project(s, p, settings)
        setup_s = time.perf_counter() - start
        frozen_f1 = frozen.metrics["macro_f1"]
    tuning = settings.model_copy(update={"finetune": "auto", "finetune_min_labels": n_labels,
                                         "finetune_steps": steps})
    stages = Stages()
    with open_session(settings.db_url) as s:
        p = s.get(type(p), p.id)
        start = time.perf_counter()
        model = train_model(s, p, tuning, train=train, evaluation=ev, seed=seed,
                            progress=stages)
        trained = time.perf_counter()
    with open_session(settings.db_url) as s:
        p = s.get(type(p), p.id)
        prelabel_project(s, p, tuning)
        batch = next_batch(s, p, tuning, size=100, seed=seed)
        ready = time.perf_counter()
    marks = [*stages.marks, ("end of training", trained)]
    stage_s = {marks[i][0]: round(marks[i + 1][1] - marks[i][1], 1)
               for i in range(len(marks) - 1)}
    state = model.metrics["finetune"]
    return {"data": name, "labels": n_labels, "pool": len(rest), "eval": len(test_texts),
            "steps": steps, "setup_seconds": round(setup_s, 1),
            "retrain_seconds": round(trained - start, 1),
            "next_batch_seconds": round(ready - trained, 1),
            "total_seconds": round(ready - start, 1), "stages": stage_s,
            "tuned": tuned.is_tuned(model.encoder),
            "check": {k: state[k] for k in ("frozen_macro_f1", "tuned_macro_f1", "gain",
                                             "stderr", "fine_tune", "seconds")},
            "eval_macro_f1_frozen_model": frozen_f1,
            "eval_macro_f1_new_model": model.metrics["macro_f1"],
            "recipe": model.metrics["recipe"]["recipe"], "batch_tasks": batch.n_tasks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["banking77"], choices=SETS)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=Settings().finetune_steps)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"no {DATA}: the public data sets are needed")
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in args.data:
        with tempfile.TemporaryDirectory(prefix="labelloop-bench-") as home:
            row = run(name, args.labels, args.steps, args.seed, Path(home))
        results[name] = row
        print(json.dumps(row), flush=True)
        print(f"{name}: retrain {row['retrain_seconds']:.0f} s + next batch "
              f"{row['next_batch_seconds']:.0f} s = {row['total_seconds']:.0f} s; "
              f"held-out frozen {row['check']['frozen_macro_f1']:.3f} vs tuned "
              f"{row['check']['tuned_macro_f1']:.3f} -> {'tuned' if row['tuned'] else 'frozen'};"
              f" test macro-F1 {row['eval_macro_f1_frozen_model']:.3f} -> "
              f"{row['eval_macro_f1_new_model']:.3f}")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
