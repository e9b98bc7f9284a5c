"""The dashboard's plots: matplotlib figures of ``web.dashboard.dashboard_view``'s figures,
as PNG bytes. Each page shows its numbers in a table beside the plot, so nothing is only
in a picture."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_CLASSES = 40  # coverage bars: the least covered first


@dataclass(frozen=True)
class Plot:
    title: str
    alt: str  # what the picture shows, for those who do not see it
    draw: Callable[[Any, dict[str, Any]], None]

    def render(self, view: dict[str, Any]) -> bytes:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 3.4), layout="constrained")
        ax = fig.subplots()
        self.draw(ax, view)
        ax.set_title(self.title, fontsize=11)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=90)
        return out.getvalue()


def _nothing(ax: Any, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def _series(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [np.nan if r.get(key) is None else float(r[key]) for r in rows]


def _quality(ax: Any, view: dict[str, Any]) -> None:
    rows = [b for b in view["batches"] if b["closed_at"] is not None]
    if not rows:
        _nothing(ax, "no closed batch yet")
        return
    x = [b["id"] for b in rows]
    ax.plot(x, _series(rows, "alpha"), "o-", label="Krippendorff alpha")
    ax.plot(x, _series(rows, "kappa"), "s--", label="Cohen kappa")
    ax.plot(x, _series(rows, "gold_accuracy"), "^:", label="gold accuracy")
    ax.set(xlabel="batch", ylim=(min(0.0, ax.get_ylim()[0]), 1.05))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="lower left", fontsize=8)


def _auto_accept(ax: Any, view: dict[str, Any]) -> None:
    rows = [b for b in view["batches"] if b["audit_n"]]
    if not rows:
        _nothing(ax, "no audited auto-accept yet")
        return
    x = np.array([b["id"] for b in rows])
    acc = np.array(_series(rows, "audit_accuracy"))
    lo = np.array([b["audit_ci95"][0] if b["audit_ci95"] else np.nan for b in rows])
    hi = np.array([b["audit_ci95"][1] if b["audit_ci95"] else np.nan for b in rows])
    ax.errorbar(x, acc, yerr=[acc - lo, hi - acc], fmt="o-", capsize=3,
                label="audited accuracy (95% CI)")
    ax.set(xlabel="batch", ylabel="accuracy", ylim=(min(0.5, float(np.nanmin(lo))), 1.02))
    twin = ax.twinx()
    twin.bar(x, [b["n_auto_accepted"] or 0 for b in rows], alpha=0.25, color="tab:green",
             label="auto-accepted")
    twin.set_ylabel("auto-accepted items")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="lower left", fontsize=8)


def _coverage(ax: Any, view: dict[str, Any]) -> None:
    per_class = [c for c in view["coverage"]["per_class"] if c["coverage"] is not None]
    if not per_class:
        _nothing(ax, "no labels yet")
        return
    shown = sorted(per_class, key=lambda c: c["coverage"])[:MAX_CLASSES]
    threshold = view["coverage"]["threshold"]
    ax.bar(range(len(shown)), [c["coverage"] for c in shown],
           color=["tab:red" if c["coverage"] < threshold else "tab:blue" for c in shown])
    ax.axhline(threshold, color="#333", lw=0.8, ls="--", label=f"under-covered < {threshold}")
    ax.axhline(1.0, color="#999", lw=0.8)
    ax.set_xticks(range(len(shown)), [c["label"][:18] for c in shown], rotation=90,
                  fontsize=6)
    ax.set(ylabel="share / target share")
    ax.legend(loc="upper left", fontsize=8)


def _learning_curve(ax: Any, view: dict[str, Any]) -> None:
    rows = [m for m in view["models"] if m["n_train"]]
    if not rows:
        _nothing(ax, "no trained model yet")
        return
    x = [m["n_train"] for m in rows]
    ax.plot(x, _series(rows, "accuracy"), "o-", label="accuracy")
    ax.plot(x, _series(rows, "macro_f1"), "s--", label="macro-F1")
    for m in rows:
        ax.annotate(f"#{m['id']}", (m["n_train"], m["accuracy"] or 0), fontsize=7,
                    textcoords="offset points", xytext=(0, 5), ha="center")
    ax.set(xlabel="rows trained on", ylabel="on the evaluation version")
    ax.legend(loc="lower right", fontsize=8)


PLOTS: dict[str, Plot] = {
    "quality": Plot("Agreement and gold accuracy per batch",
                    "Krippendorff alpha, Cohen kappa and gold accuracy of each closed batch, "
                    "by batch number; the table below has the same figures", _quality),
    "auto_accept": Plot("Auto-accepted items and their audited accuracy",
                        "Per batch: the audited accuracy of auto-accepted labels with its "
                        "95% interval, and bars of how many items were auto-accepted",
                        _auto_accept),
    "coverage": Plot("Per-class coverage (least covered first)",
                     "Each class's share of the labels over its share of the target; red "
                     "bars fall below the under-covered line", _coverage),
    "learning_curve": Plot("Learning curve of the latest models",
                           "Accuracy and macro-F1 on the evaluation version against the "
                           "rows each model trained on", _learning_curve),
}
