"""How the KPIs of ``remediate.kpis.project_kpis`` are shown: seven lines a person reads
(``kpi_lines``) and a 2x3 figure, one panel per KPI (``kpi_figure``)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def kpi_lines(kpis: dict[str, Any]) -> list[str]:
    """``project_kpis``'s answer (or its JSON) as seven lines a person reads: the six KPIs
    and the auto-accept share with its audited accuracy."""
    agree, gold, cov = kpis["agreement"], kpis["gold"], kpis["coverage"]
    line, cyc, rem = kpis["lineage"], kpis["cycle_time"], kpis["remediation"]
    auto = kpis["auto_accept"]
    edge = cov.get("edge_cases") or {}
    under = cov.get("under_covered") or []
    train = line.get("active_model") or line.get("train_version") or {}
    stages = ", ".join(f"{name} {_duration(v['median_seconds'])}"
                       for name, v in cyc["stages"].items() if v["median_seconds"] is not None)
    etr = rem["etr_seconds"]
    audit = auto["audit"]
    return [
        f"1. agreement: Krippendorff alpha {_num(agree['krippendorff_alpha']['weighted'])} "
        f"(weighted over {agree['krippendorff_alpha']['n_batches']} batches), "
        f"with consensus {_pct(agree['agreement_with_consensus'])}",
        f"2. gold accuracy: {_pct(gold['accuracy'])} on {gold['n']} gold answers",
        f"3. coverage: {len(under)} of {len(cov['per_class'])} classes under half their "
        f"target share ({cov['target']['source']}); edge cases with a human label "
        f"{_pct(edge.get('share'))} of {edge.get('n', 0)}",
        f"4. lineage completeness: {_pct(train.get('share'))} of {train.get('n_rows', 0)} "
        "training rows",
        f"5. cycle time (median): {stages or 'n/a'}; rework rate "
        f"{_pct(cyc['rework']['rate'])}",
        f"6. evaluation-to-remediation: {etr['n']} targets closed, median "
        f"{_duration(etr['median'])}; open {rem['by_status'].get('open', 0)}, acting "
        f"{rem['by_status'].get('acting', 0)}, addressed {rem['by_status'].get('addressed', 0)}",
        f"   auto-accepted: {_pct(auto['share'])} of {auto['n_labeled']} labels, audited "
        f"accuracy {_pct(audit['accuracy'])} on {audit['n']}",
        *_saved_line(kpis),
    ]


def _saved_line(kpis: dict[str, Any]) -> list[str]:
    if "labels_saved" not in kpis:
        return []
    saved = kpis["labels_saved"]
    if saved is None:
        return ["   labels saved against random: too few human labels to replay"]
    random = saved["random"] if saved["random"] is not None else f"more than {saved['n_items']}"
    return [f"   labels saved against random (replayed on {saved['n_items']} human labels): "
            f"default reaches 95% of their macro-F1 with {saved['default'] or 'n/a'} labels, "
            f"random with {random}"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# -- the figure -------------------------------------------------------------------------------

MAX_BARS = 16  # classes in the coverage panel: the lowest and highest coverage beyond this


def kpi_figure(kpis: dict[str, Any]) -> bytes:
    """A 2x3 PNG of ``project_kpis``'s answer (or its JSON), one panel per KPI."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 9), layout="constrained")
    axes = fig.subplots(2, 3)
    fig.suptitle(f"KPIs of {kpis.get('project', '')}")
    _agreement_panel(axes[0][0], kpis["agreement"])
    _gold_panel(axes[0][1], kpis["gold"])
    _coverage_panel(axes[0][2], kpis["coverage"])
    _lineage_panel(axes[1][0], kpis["lineage"])
    _cycle_panel(axes[1][1], kpis["cycle_time"])
    _remediation_panel(axes[1][2], kpis["remediation"])
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=80)
    return out.getvalue()


def _nothing(ax: Any, title: str, why: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _agreement_panel(ax: Any, k: dict[str, Any]) -> None:
    title = f"1. agreement (alpha weighted {_num(k['krippendorff_alpha']['weighted'])})"
    rows = k["per_batch"]
    if not rows:
        _nothing(ax, title, "no closed batch yet")
        return
    x = [r["batch_id"] for r in rows]
    ax.plot(x, [np.nan if r["krippendorff_alpha"] is None else r["krippendorff_alpha"]
                for r in rows], "o-", label="Krippendorff alpha")
    ax.plot(x, [np.nan if r["agreement_with_consensus"] is None
                else r["agreement_with_consensus"] for r in rows], "s--",
            label="agreement with consensus")
    ax.set(title=title, xlabel="batch", ylim=(min(0.0, ax.get_ylim()[0]), 1.05))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="lower left", fontsize=8)


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _gold_panel(ax: Any, k: dict[str, Any]) -> None:
    title = f"2. gold accuracy ({_pct(k['accuracy'])} of {k['n']})"
    if not k["n"]:
        _nothing(ax, title, "no gold answers yet")
        return
    names = ["all", *k["per_annotator"]][:MAX_BARS]
    values = [k["accuracy"], *(r["accuracy"] for r in k["per_annotator"].values())][:MAX_BARS]
    ax.bar(names, values, color=["tab:blue"] + ["tab:cyan"] * (len(names) - 1))
    ax.set(title=title, ylim=(0, 1.05), ylabel="accuracy")
    ax.tick_params(axis="x", rotation=45, labelsize=8)


def _coverage_panel(ax: Any, k: dict[str, Any]) -> None:
    edge = k["edge_cases"]
    title = f"3. coverage vs {k['target']['source']} (edge cases labeled " \
            f"{_pct(edge['share'] if edge else None)})"
    rows = [r for r in k["per_class"] if r["coverage"] is not None]
    if not rows:
        _nothing(ax, title, "no labeled pool items yet")
        return
    rows.sort(key=lambda r: r["coverage"])
    if len(rows) > MAX_BARS:
        rows = rows[:MAX_BARS // 2] + rows[-(MAX_BARS // 2):]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["share"] for r in rows], 0.4, label="labeled share")
    ax.bar(x + 0.2, [r["target_share"] for r in rows], 0.4, label="target share")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=60, fontsize=7, ha="right")
    ax.set(title=title, ylabel="share")
    ax.legend(fontsize=8)


def _lineage_panel(ax: Any, k: dict[str, Any]) -> None:
    bars = {f"{what} {row['name']}": row["share"] for what, row in
            (("version", k["train_version"]), ("model", k["active_model"]))
            if row is not None and row["share"] is not None}
    if not bars:
        _nothing(ax, "4. lineage completeness", "no training version yet")
        return
    ax.bar(list(bars), list(bars.values()), color="tab:green")
    ax.set(title="4. lineage completeness", ylim=(0, 1.05), ylabel="share of rows")
    ax.tick_params(axis="x", labelsize=8)


def _cycle_panel(ax: Any, k: dict[str, Any]) -> None:
    title = f"5. cycle time (rework {_pct(k['rework']['rate'])}, pre-label corrected " \
            f"{_pct(k['prelabel_corrected']['share'])})"
    stages = {name: s["median_seconds"] for name, s in k["stages"].items()
              if s["median_seconds"] is not None}
    if not stages:
        _nothing(ax, title, "nothing timed yet")
        return
    ax.bar(list(stages), [max(v, 0.0) for v in stages.values()], color="tab:orange")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set(title=title, ylabel="median seconds")
    ax.tick_params(axis="x", rotation=30, labelsize=8)


def _remediation_panel(ax: Any, k: dict[str, Any]) -> None:
    etr = k["etr_seconds"]
    title = "6. remediation targets (ETR median " + \
        ("n/a" if etr["median"] is None else f"{etr['median'] / 3600:.1f} h") + ")"
    if not any(k["by_status"].values()):
        _nothing(ax, title, "no remediation targets yet")
        return
    ax.bar(list(k["by_status"]), list(k["by_status"].values()), color="tab:purple")
    ax.set(title=title, ylabel="targets")
