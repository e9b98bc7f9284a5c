"""The demo: several rounds of the whole loop on BANKING77 with simulated annotators.

Ground truth comes from the shipped CSV; each simulated annotator answers with the true label
except, at their own noise rate, a random wrong one. Nothing needs ``../shared`` or a network.
The project is left ready for people: the annotators, a reviewer and an ML engineer can sign
in to the web pages (``labelloop serve --home <home>``), and one more batch waits open.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.access.projects import create_project
from labelloop.access.users import add_member, create_user
from labelloop.annotate.service import next_tasks
from labelloop.core.enums import Role
from labelloop.core.progress import Progress, silent
from labelloop.core.settings import Settings
from labelloop.ingest.checks import content_hash
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer as submit
from labelloop.prelabel.service import prelabel_project
from labelloop.quality.adjudication import DISAGREEMENT, HELD, review_queue
from labelloop.remediate.kpi_report import kpi_figure, kpi_lines
from labelloop.remediate.kpis import project_kpis
from labelloop.remediate.service import review_and_record
from labelloop.selection.service import BatchReport, next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Annotation, Batch, FinalLabel, Item, Project
from labelloop.training.service import train_model
from labelloop.versions.service import freeze_version

CRITICAL = ["lost_or_stolen_card", "compromised_card", "card_payment_not_recognised",
            "cash_withdrawal_not_recognised", "direct_debit_payment_not_recognised",
            "lost_or_stolen_phone"]
ANNOTATORS = {"ana": 0.03, "ben": 0.06, "chen": 0.10}
TURN = 25  # tasks an annotator takes at a time
# Who signs in to the web pages after the demo: the simulated annotators (the rounds'
# answers are theirs), a reviewer and an ML engineer, each a member with that role.
REVIEWER, ML_ENGINEER = "rita", "mona"
PEOPLE = {**dict.fromkeys(ANNOTATORS, Role.ANNOTATOR), REVIEWER: Role.REVIEWER,
          ML_ENGINEER: Role.ML_TEAM}
MAX_QUEUE = 100_000  # the demo counts its whole review queue
URL = "http://127.0.0.1:8000/"  # where `labelloop serve` listens by default


def demo_password(name: str) -> str:
    """A demo member's password: fixed and printed, for a demo on one's own machine only."""
    return f"{name}-demo-pass"


def demo_data() -> Path:
    return Path(str(resources.files("labelloop") / "data" / "banking77"))


@dataclass
class Oracle:
    """Simulated annotators: truth plus per-annotator noise (seeded)."""

    truth: dict[str, str]
    labels: list[str]
    noise: dict[str, float] = field(default_factory=lambda: dict(ANNOTATORS))
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def answer(self, annotator: str, text: str) -> str:
        true = self.truth[content_hash(text)]
        if self.rng.random() < self.noise[annotator]:
            return str(self.rng.choice([lb for lb in self.labels if lb != true]))
        return true


def read_truth(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as fh:
        return {content_hash(row["text"]): row["category"] for row in csv.DictReader(fh)}


def annotate_batch(settings: Settings, project_name: str, oracle: Oracle) -> int:
    """The simulated annotators take turns, ``TURN`` tasks at a time (as a team working side
    by side would), until no task is left for any of them; returns answers given."""
    given = 0
    while True:
        progressed = 0
        for annotator in oracle.noise:
            with open_session(settings.db_url) as session:
                project = session.scalar(select(Project).where(Project.name == project_name))
                for task in next_tasks(session, project, annotator, limit=TURN):
                    submit(session, task.task_id, annotator,
                           oracle.answer(annotator, task.text), seconds_spent=5.0)
                    progressed += 1
        given += progressed
        if progressed == 0:
            return given


def sample_csv(src: Path, dst: Path, limit: int | None, seed: int) -> Path:
    """The first ``limit`` rows of a seeded shuffle of ``src`` (all rows when limit is None)."""
    if limit is None:
        return src
    with src.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    np.random.default_rng(seed).shuffle(rows)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields or []))
        writer.writeheader()
        writer.writerows(rows[:limit])
    return dst


def run_demo(settings: Settings, *, rounds: int = 5, batch_size: int = 200,
             strategy: str = "default", seed: int = 0, fresh: bool = True,
             limit_pool: int | None = None, limit_eval: int | None = None,
             progress: Progress = silent, echo=print,  # noqa: ANN001
             closing=None) -> list[dict[str, Any]]:  # noqa: ANN001
    """Run the loop ``rounds`` times; returns (and echoes) one row of figures per round.
    Then one more batch is made and left open for people, and the lines saying how to
    serve the project and who signs in go to ``closing`` (default ``echo``; the CLI prints
    them after its progress bars).

    ``limit_pool`` / ``limit_eval`` take a seeded sample of the data (for quick runs).
    """
    if fresh and settings.home.exists():
        shutil.rmtree(settings.home)
    data = demo_data()
    labels = json.loads((data / "categories.json").read_text())
    oracle = Oracle(read_truth(data / "train.csv"), labels, seed=seed)
    name = "banking77-demo"
    pool_csv = sample_csv(data / "train.csv", settings.home / "data" / "pool.csv", limit_pool,
                          seed)
    eval_csv = sample_csv(data / "test.csv", settings.home / "data" / "eval.csv", limit_eval,
                          seed)
    with open_session(settings.db_url) as session:
        project = create_project(session, name, labels, critical_labels=CRITICAL,
                                 guideline_text="Pick the customer's intent.",
                                 overlap=1, critical_overlap=2, confidence_threshold=0.9,
                                 audit_share=0.05, min_agreement=0.6)
        add_people(session, project)
        for path, split, label_field in ((pool_csv, "pool", None),
                                         (eval_csv, "eval", "category")):
            rep = ingest_file(session, project, path, text_field="text",
                              label_field=label_field, split=split, licence="CC-BY-4.0")
            echo(f"ingested {path.name} as {split}: {rep.n_accepted} items, "
                 f"{rep.n_duplicates} duplicates, {rep.n_rejected} rejected")
        prelabel_project(session, project, settings, splits=("pool", "eval"), progress=progress)
        eval_version = freeze_version(session, project, split="eval")
    rows: list[dict[str, Any]] = []
    for r in range(1, rounds + 1):
        with open_session(settings.db_url) as session:
            project = session.scalar(select(Project).where(Project.name == name))
            report = next_batch(session, project, settings, size=batch_size, strategy=strategy,
                                seed=seed + r, progress=progress)
        annotate_batch(settings, name, oracle)
        with open_session(settings.db_url) as session:
            project = session.scalar(select(Project).where(Project.name == name))
            batch = session.get(Batch, report.batch_id)
            train_version = freeze_version(session, project, split="train")
            model = train_model(session, project, settings, train=train_version,
                                evaluation=session.get(type(eval_version), eval_version.id),
                                progress=progress)
            review_and_record(session, project, model, by="demo")
            row = _round_row(session, project, batch, report, model, train_version, oracle, r)
        rows.append(row)
        echo(_format_row(row))
    with open_session(settings.db_url, read_only=True) as session:
        figures = project_kpis(session, session.scalar(select(Project).where(
            Project.name == name)), replay=True)
    png = settings.home / "kpis.png"
    png.write_bytes(kpi_figure(figures))
    echo(f"the six KPIs (plotted in {png}):")
    for line in kpi_lines(figures):
        echo(f"  {line}")
    echo(f"MLflow runs: {settings.tracking_uri} (experiment labelloop/{name}); view with "
         f"`mlflow ui --backend-store-uri {settings.tracking_uri}`")
    with open_session(settings.db_url) as session:  # the rounds are history; this one waits
        project = session.scalar(select(Project).where(Project.name == name))
        report = next_batch(session, project, settings, size=batch_size, strategy=strategy,
                            seed=seed + rounds + 1, progress=progress)
        held, disagreeing = waiting_for_review(session, project)
    for line in sign_in_lines(settings, report, held, disagreeing):
        (closing or echo)(line)
    return rows


def add_people(session: Session, project: Project) -> None:
    """The demo's ``PEOPLE``, with their passwords, members of ``project`` in their roles."""
    for person, role in PEOPLE.items():
        add_member(session, project, create_user(session, person, role, demo_password(person)),
                   role)


def waiting_for_review(session: Session, project: Project) -> tuple[int, int]:
    """(items held for review, items whose answers disagree): what a reviewer finds in the
    review queue (``quality.adjudication``)."""
    queue = review_queue(session, project, limit=MAX_QUEUE)
    return (sum(q.why == HELD for q in queue.items),
            sum(q.why == DISAGREEMENT for q in queue.items))


def sign_in_lines(settings: Settings, report: BatchReport, held: int,
                  disagreeing: int) -> list[str]:
    """How to open the demo's project in the web pages, and who signs in."""
    annotators = ", ".join(f"{n} / {demo_password(n)}" for n in ANNOTATORS)
    review = (f"waiting: {held} items held for review, {disagreeing} tasks with answers "
              "that disagree" if held or disagreeing else "nothing waits for a reviewer yet")
    return [
        f"batch {report.batch_id} is open: {report.n_tasks} tasks with the latest model's "
        f"pre-labels ({report.n_auto_accepted} items auto-accepted)",
        f"open the project in the web pages: `labelloop serve --home {settings.home}`, "
        f"then {URL}",
        f"  annotator: {annotators}",
        f"  reviewer:  {REVIEWER} / {demo_password(REVIEWER)} ({review})",
        f"  ml-team:   {ML_ENGINEER} / {demo_password(ML_ENGINEER)}",
    ]


def _round_row(session, project, batch, report, model, train_version, oracle, r):  # noqa: ANN001, ANN202
    human_items = session.scalar(select(func.count(FinalLabel.item_id)).where(
        FinalLabel.origin.in_(("human", "reviewed")))) or 0
    answers = session.scalar(select(func.count(Annotation.id))) or 0
    auto_rows = session.execute(select(Item.text, FinalLabel.label).join(
        FinalLabel, FinalLabel.item_id == Item.id).where(FinalLabel.origin == "auto")).all()
    auto_true = float(np.mean([oracle.truth[content_hash(t)] == lb for t, lb in auto_rows])) \
        if auto_rows else None
    n_pool = session.scalar(select(func.count(Item.id)).where(
        Item.project_id == project.id, Item.split == "pool")) or 1
    noncritical_pool = sum(1 for lb in oracle.truth.values() if lb not in CRITICAL) or 1
    audit = batch.qa.get("audit", {})
    return {
        "round": r, "batch_id": batch.id, "human_labeled_items": human_items,
        "human_answers": answers, "auto_accepted_total": len(auto_rows),
        "auto_accepted_share": len(auto_rows) / n_pool,
        "auto_accepted_share_of_noncritical": len(auto_rows) / noncritical_pool,
        "audit_n": audit.get("n"), "audit_accuracy": audit.get("accuracy"),
        "audit_ci95": audit.get("ci95"), "auto_accepted_true_accuracy": auto_true,
        "krippendorff_alpha": batch.qa.get("krippendorff_alpha"), "gate": batch.status,
        "train_version": train_version.name, "train_rows": train_version.n_rows,
        "eval_accuracy": model.metrics.get("accuracy"),
        "eval_macro_f1": model.metrics.get("macro_f1"), "mlflow_run_id": model.mlflow_run_id,
        "tasks": report.n_tasks, "reasons": report.reasons,
        "fit_rows": model.metrics.get("n_train"),
        "pseudo_labels": (model.metrics.get("self_training") or {}).get("n_pseudo"),
        "recipe": (model.metrics.get("recipe") or {}).get("recipe"),
        "finetune": _finetune_note(model.metrics.get("finetune") or {}),
    }


def _finetune_note(state: dict[str, Any]) -> str | None:
    """What this round's fine-tuning check said, if it ran one; the encoder otherwise."""
    if not state:
        return None
    from labelloop.prelabel.tuned import is_tuned

    encoder = "tuned" if is_tuned(state.get("encoder")) else "frozen"
    if not state.get("checked"):
        return f"{encoder} encoder"
    return (f"fine-tuning check {state['frozen_macro_f1']:.3f} frozen vs "
            f"{state['tuned_macro_f1']:.3f} tuned -> {encoder} encoder "
            f"({state['seconds']:.0f} s)")


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if pct else (f"{value:.3f}" if isinstance(value, float)
                                              else str(value))


def _format_row(row: dict[str, Any]) -> str:
    return (f"round {row['round']}: human labels {row['human_labeled_items']} "
            f"({row['human_answers']} answers) | auto-accepted {row['auto_accepted_total']} "
            f"({_fmt(row['auto_accepted_share'], True)} of pool), audited accuracy "
            f"{_fmt(row['audit_accuracy'])} on {_fmt(row['audit_n'])} "
            f"(true {_fmt(row['auto_accepted_true_accuracy'])}) | alpha "
            f"{_fmt(row['krippendorff_alpha'])} gate {row['gate']} | eval accuracy "
            f"{_fmt(row['eval_accuracy'])} macro-F1 {_fmt(row['eval_macro_f1'])}"
            + ("" if row.get("recipe") is None else f" recipe {row['recipe']}")
            + ("" if row.get("finetune") is None else f", {row['finetune']}")
            + ("" if row.get("pseudo_labels") is None else
               f" (+{row['pseudo_labels']} pseudo-labels)")
            + f" | tasks {row['reasons']}")
