"""The notebooks run on small data, twice in a row in the same home, as a user re-runs them.

Each is executed with nbclient in a kernel of this interpreter; the test's sizes are added to
the cell tagged ``parameters`` (after the notebook's own, as papermill injects them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WALKTHROUGH = {"POOL": 200, "EVAL": 100, "ROUNDS": 2, "BATCH": 40, "INTENTS": 10}
COMPARE = {"INTENTS": 8, "PER_INTENT": 30, "STRATEGIES": ["default", "margin"],
           "SEED_SIZE": 16, "BATCH": 16, "BUDGET": 80, "REPEATS": 1}
KPIS = ("agreement", "gold", "coverage", "lineage", "cycle_time", "remediation")


@pytest.fixture
def notebook_env(kernel_env: Path, database_url: str | None) -> Path:
    """``kernel_env`` with the suite's database (PostgreSQL on that pass): the walkthrough's."""
    return kernel_env


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernel's environment: a home under tmp_path, MLflow inside it, no network. The
    strategies notebook touches no database, so it runs on the SQLite pass only."""
    home = tmp_path / "home"
    monkeypatch.setenv("LABELLOOP_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("MLFLOW_TRACKING_URI", "LABELLOOP_MLFLOW_TRACKING_URI", "LABELLOOP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return home


def execute(name: str, sizes: dict[str, Any], cwd: Path) -> nbformat.NotebookNode:
    """Run ``notebooks/<name>`` with ``sizes`` after its parameters; CellExecutionError
    (with the cell and its traceback) on the first cell that fails."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{name}: one cell tagged 'parameters' expected"
    for key in sizes:
        assert re.search(rf"^{key}\b", params[0].source, re.M), f"{name} has no {key}"
    params[0].source += "\n# the test's sizes\n" + "\n".join(
        f"{k} = {v!r}" for k, v in sizes.items())
    # ipykernel's own spec, for this interpreter: no `ipykernel install` needed, and another
    # "python3" kernel a user installed elsewhere is not picked up.
    km = AsyncKernelManager(kernel_name="python3",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    cwd.mkdir(parents=True, exist_ok=True)
    NotebookClient(nb, km=km, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All text a user sees (streams, text/plain and HTML) and the number of PNG outputs."""
    text, pngs = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                text += [out.data.get("text/plain", ""), out.data.get("text/html", "")]
                pngs += "image/png" in out.data
    return "\n".join(text), pngs


def runs_found(text: str) -> int:
    found = re.search(r"MLflow runs found: (\d+)", text)
    assert found, "the notebook did not report the runs it read back from MLflow"
    return int(found.group(1))


@pytest.mark.sqlite_only  # a notebook on the embedded default
def test_loop_walkthrough_runs_twice(tmp_path: Path, notebook_env: Path) -> None:
    projects = []
    for attempt in (1, 2):
        nb = execute("loop_walkthrough.ipynb", WALKTHROUGH, tmp_path / f"cwd{attempt}")
        text, pngs = outputs(nb)
        projects.append(re.search(r"project (walkthrough-\w+)", text).group(1))
        assert str(notebook_env) in text  # the home came from LABELLOOP_HOME
        # two rounds of the loop, each evaluated
        assert "round 1:" in text and "round 2:" in text and "macro-F1" in text
        assert "lineage completeness 100%" in text and "train-v1" in text
        assert all(kpi in text for kpi in KPIS)
        # each training is one run of the project's experiment, with per-class metrics
        assert runs_found(text) == WALKTHROUGH["ROUNDS"]
        assert f"{WALKTHROUGH['INTENTS']} intents logged on run" in text
        # rounds and auto-accept, per-class F1, the KPI figure, the confusion matrix
        assert pngs >= 4
    assert projects[0] != projects[1]  # the second run made a new project, no conflict
    assert (notebook_env / "mlflow.db").exists()


def test_compare_strategies_runs_twice(tmp_path: Path, kernel_env: Path) -> None:
    for attempt in (1, 2):
        nb = execute("compare_strategies.ipynb", COMPARE, tmp_path / f"cwd{attempt}")
        text, pngs = outputs(nb)
        assert "labelloop simulate --data" in text
        assert f"{COMPARE['INTENTS'] * COMPARE['PER_INTENT']} BANKING77 rows" in text
        # the home's MLflow store keeps every simulation: this one, and the first run's
        assert runs_found(text) == attempt
        for strategy in (*COMPARE["STRATEGIES"], "random", "pipeline"):
            assert strategy in text
        assert pngs == 2  # learning curves, labels to the target
    assert (kernel_env / "mlflow.db").exists()
