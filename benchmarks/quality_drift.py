"""The QA layer in the loop: gold, gates, drift and label errors through the service layer.

    python benchmarks/quality_drift.py [--out benchmarks/results/quality_drift.json]

A BANKING77 slice (packaged, 16 intents): an unlabeled pool and expert-labeled gold items
from the test split, a project with overlap 2 and gold mixed in at 15%. Three batches under
guideline v1 by three careful simulated annotators (3-8% noise); then the guideline moves to
v2, a careless newcomer (60% noise) joins and a veteran starts answering one intent as
another. The script reports the gate of every batch, who was flagged on gold, the drift
finding with its named causes, and confident learning on the final labels (precision and
recall against the truth), each service call timed. SQLite, MiniLM on CPU, zero-shot
pre-labels (no training).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from labelloop.access.projects import create_project, get_project, update_guideline
from labelloop.annotate.service import next_tasks
from labelloop.core.errors import ConflictError
from labelloop.core.settings import Settings
from labelloop.demo import demo_data
from labelloop.ingest.checks import content_hash
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer as submit
from labelloop.quality.gold_items import ingest_gold
from labelloop.quality.reports import annotator_scorecards, drift_findings, project_report
from labelloop.quality.review import suspect_label_errors
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import FinalLabel, Item

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["activate_my_card", "age_limit", "apple_pay_or_google_pay", "atm_support",
          "card_arrival", "card_delivery_estimate", "change_pin", "country_support",
          "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_limits",
          "cancel_transfer", "visa_or_mastercard", "terminate_account", "getting_spare_card"]
CONFUSED = ("card_arrival", "card_delivery_estimate")  # after v2, ben answers the second
NOISE_V1 = {"ana": 0.03, "ben": 0.06, "chen": 0.08}
NOISE_V2 = {**NOISE_V1, "dev": 0.6}
BATCH_SIZE, CURRENT_SIZE, SEED = 60, 120, 0


def banking_rows(split: str, per_label: int) -> list[dict[str, str]]:
    """The first ``per_label`` rows of each intent in LABELS, in file order."""
    with (demo_data() / f"{split}.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r for label in LABELS
            for r in [x for x in rows if x["category"] == label][:per_label]]


def write_csv(path: Path, rows: list[dict[str, str]], fields: tuple[str, ...]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


class Crowd:
    """Simulated annotators: the true label, except a random wrong one at their noise rate
    (and ben's confusion once ``confused`` is set)."""

    def __init__(self, truth: dict[str, str], seed: int) -> None:
        self.truth, self.rng, self.confused = truth, np.random.default_rng(seed), False

    def answer(self, who: str, text: str, noise: dict[str, float]) -> str:
        true = self.truth[content_hash(text)]
        if self.confused and who == "ben" and true == CONFUSED[0]:
            return CONFUSED[1]
        if self.rng.random() < noise[who]:
            return str(self.rng.choice([lb for lb in LABELS if lb != true]))
        return true


def run_batch(settings: Settings, crowd: Crowd, noise: dict[str, float], seed: int,
              size: int = BATCH_SIZE) -> tuple[int, dict[str, int]]:
    """Make a batch; annotators take turns fetching 10 tasks until nothing is left.
    Returns the batch id and how many hand-outs a flagged annotator was refused."""
    with open_session(settings.db_url) as s:
        batch_id = next_batch(s, get_project(s, "bank"), settings, size=size,
                              seed=seed).batch_id
    refused: dict[str, int] = {}
    while True:
        handed = 0
        for who in noise:
            with open_session(settings.db_url) as s:
                try:
                    views = next_tasks(s, get_project(s, "bank"), who, limit=10)
                except ConflictError:
                    refused[who] = refused.get(who, 0) + 1
                    continue
            for v in views:
                with open_session(settings.db_url) as s:
                    try:
                        submit(s, v.task_id, who, crowd.answer(who, v.text, noise), 3.0)
                    except ConflictError:  # flagged by the answer before: tasks released
                        break
            handed += len(views)
        if handed == 0:
            return batch_id, refused


def timed(fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "quality_drift.json")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelloop-quality-drift-"))
    settings = Settings(home=home, show_progress=False)
    pool = banking_rows("train", 30)
    gold = banking_rows("test", 8)
    truth = {content_hash(r["text"]): r["category"] for r in pool + gold}
    started = time.perf_counter()
    with open_session(settings.db_url) as s:
        p = create_project(s, "bank", LABELS, overlap=2, critical_overlap=2, min_agreement=0.5,
                           gold_share=0.15, gold_min_accuracy=0.8)
        ingest_file(s, p, write_csv(home / "pool.csv", pool, fields=("text",)))
        ingest_gold(s, p, settings, write_csv(home / "gold.csv", gold, ("text", "category")),
                    label_field="category")
    crowd = Crowd(truth, SEED)
    batches, refused = [], {}
    for i in range(3):
        batches.append(run_batch(settings, crowd, NOISE_V1, seed=i)[0])
    with open_session(settings.db_url) as s:
        update_guideline(s, get_project(s, "bank"), "v2: delivery estimates vs arrival")
    crowd.confused = True
    last, refused = run_batch(settings, crowd, NOISE_V2, seed=3, size=CURRENT_SIZE)
    batches.append(last)
    loop_seconds = time.perf_counter() - started

    with open_session(settings.db_url) as s:
        p = get_project(s, "bank")
        report, t_report = timed(lambda: project_report(s, p))
        cards, t_cards = timed(lambda: annotator_scorecards(s, p))
        drift, t_drift = timed(lambda: drift_findings(s, p, margin=0.05, current=1))
        errors, t_errors = timed(lambda: suspect_label_errors(s, p, settings, top=10_000))
        finals = {f.item_id: f.label for f in s.scalars(select(FinalLabel))}
        hashes = {i: h for i, h in s.execute(select(Item.id, Item.content_hash))}
    wrong = {i for i, label in finals.items() if label != truth[hashes[i]]}
    suspected = {x["item_id"] for x in errors["suspects"]}
    hits = len(wrong & suspected)

    print(f"BANKING77 slice: {len(LABELS)} intents, pool {len(pool)}, gold {len(gold)}; "
          f"3 batches of {BATCH_SIZE} then {CURRENT_SIZE}, overlap 2, gold share 0.15, "
          f"gold bar 0.8; loop {loop_seconds:.1f} s")
    print(f"\n{'batch':>5} {'guideline':>9} {'status':>8} {'alpha':>6} {'kappa':>6} "
          f"{'gold acc':>8}  gate reason")
    for b in report["batches"]:
        print(f"{b['batch_id']:>5} {b['guideline_version']:>9} {b['status']:>8} "
              f"{_f(b['krippendorff_alpha'])} {_f(b['cohen_kappa'])} "
              f"{_f(b['gold_accuracy']):>8}  {b['gate_reason'] or ''}")
    print(f"\n{'annotator':<9} {'status':>8} {'answers':>7} {'gold n':>6} {'gold acc':>8}")
    for c in cards:
        g = c["gold"] or {}
        print(f"{c['annotator']:<9} {c['status']:>8} {c['n_answers']:>7} {g.get('n', 0):>6} "
              f"{_f(g.get('accuracy')):>8}")
    print(f"flagged: {report['annotators']['flagged']}; hand-outs refused: {refused}")
    print(f"\nDrift (baseline {drift['baseline_batches']} vs {drift['current_batches']}):")
    for f in drift["findings"]:
        print(f"  {f['message']}")
        for cause in f["causes"]:
            print(f"    - {cause}")
    print(f"\nConfident learning on {errors['n_items']} final labels: {errors['n_suspects']} "
          f"suspects; {len(wrong)} labels are truly wrong, {hits} of them suspected "
          f"(recall {hits / max(len(wrong), 1):.2f}, precision "
          f"{hits / max(len(suspected), 1):.2f})")
    print(f"seconds: project_report {t_report:.3f}, annotator_scorecards {t_cards:.3f}, "
          f"drift_findings {t_drift:.3f}, suspect_label_errors {t_errors:.2f}")

    result = {"seed": SEED, "labels": LABELS, "n_pool": len(pool), "n_gold": len(gold),
              "batch_size": BATCH_SIZE, "current_size": CURRENT_SIZE,
              "noise_v1": NOISE_V1, "noise_v2": NOISE_V2,
              "confused": CONFUSED, "machine": {"python": platform.python_version(),
                                                "cpus": os.cpu_count()},
              "loop_seconds": loop_seconds, "batches": report["batches"],
              "by_guideline_version": report["by_guideline_version"],
              "annotators": [{k: c[k] for k in ("annotator", "status", "reason", "n_answers",
                                                "agreement", "gold")} for c in cards],
              "refused_handouts": refused, "drift": drift,
              "label_errors": {"n_items": errors["n_items"], "n_suspects": errors["n_suspects"],
                               "n_wrong": len(wrong), "hits": hits},
              "seconds": {"project_report": t_report, "annotator_scorecards": t_cards,
                          "drift_findings": t_drift, "suspect_label_errors": t_errors}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def _f(x: float | None) -> str:
    return f"{x:6.3f}" if x is not None else f"{'-':>6}"


if __name__ == "__main__":
    main()
