"""The one settings object: environment variables (``LABELLOOP_*``) and an optional TOML file."""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Where labelloop keeps its state and which models it uses.

    Every field can be set by an environment variable ``LABELLOOP_<FIELD>`` or in the TOML
    file named by ``LABELLOOP_CONFIG`` (default ``labelloop.toml`` in the working directory).
    """

    model_config = SettingsConfigDict(env_prefix="LABELLOOP_", extra="ignore")

    home: Path = Field(default=Path(".labelloop"), description="Folder for the SQLite file, "
                       "MLflow store, exports and model files.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default "
                                     "sqlite:///<home>/labelloop.db. PostgreSQL: "
                                     "postgresql+psycopg://user@host/db")
    mlflow_tracking_uri: str | None = Field(default=None, description="Default: "
                                            "MLFLOW_TRACKING_URI, else sqlite:///<home>/mlflow.db")
    encoder: str = Field(default=DEFAULT_ENCODER, description="Packaged MiniLM, or any local "
                         "Hugging Face model path")
    device: str = Field(default="auto", description="auto, cpu or cuda")
    runtime: Literal["torch", "onnx"] = Field(
        default="torch", description="Encoder runtime: torch, or onnx (exported once to ONNX "
        "Runtime). A runtime other than fp32 torch is used only if it keeps the pre-labeler's "
        "answers (prelabel.runtime_check: >= 99.5% the same labels, macro-F1 within 0.005 on "
        "a labeled probe), else fp32 torch with a warning")
    quantize: bool = Field(default=False, description="int8 dynamic quantisation in that "
                           "runtime; checked like the runtime (int8 fails that check on "
                           "MiniLM: benchmarks/prelabel_throughput.py)")
    smoothing_k: int = Field(default=10, ge=0, le=100, description="Neighbour smoothing: the "
                             "pre-labeler reads each embedding averaged with its k nearest "
                             "pool items (prelabel.smoothing); 0 turns it off. With recipe "
                             "auto, the k a project starts from")
    recipe: Literal["auto", "fixed"] = Field(
        default="auto", description="auto: each retrain chooses the head's smoothing k and C "
        "out of fold from the labels at hand (prelabel.recipe); fixed: smoothing_k and the "
        "C asked for (10 unless given)")
    finetune: Literal["auto", "off"] = Field(
        default="auto", description="auto: from finetune_min_labels labels, a retrain checks "
        "whether few-shot fine-tuning of the encoder (SetFit, prelabel.finetune) beats the "
        "frozen encoder on a third of the labels it did not tune on, and again each time the "
        "labels have doubled; where it wins, the model reads a tuned encoder version of its "
        "own, whose pool vectors the training job computes before the model goes live. off: "
        "the frozen encoder always")
    finetune_min_labels: int = Field(default=100, ge=40, description="Labels (besides "
                                     "auto-accepted) before the first fine-tuning check")
    finetune_steps: int = Field(default=200, ge=1, le=100_000, description="Contrastive "
                                "steps of 16 pairs per fine-tune (about 0.4 s each on 2 CPU "
                                "cores for MiniLM)")
    self_training: bool = Field(default=False, description="Also train each model on pool "
                                "items it labels with calibrated confidence >= "
                                "pseudo_label_threshold (logged to MLflow as an input; never "
                                "counted as human labels). Opt-in: it makes the model surer of "
                                "its own mistakes, and auto-accept less accurate")
    pseudo_label_threshold: float = Field(default=0.9, gt=0.0, le=1.0)
    train_on_auto_accepted: bool = Field(default=False, description="Fit the pre-labeler on "
                                         "auto-accepted rows too (they stay in every version "
                                         "either way)")
    assignment_timeout_s: float = Field(default=1800.0, gt=0, description="An assigned task "
                                        "left unanswered this long goes back to the pool")
    secret_key: str | None = Field(default=None, description="Signs web session cookies; "
                                   "default: made once and kept in <home>/secret_key")
    mlflow_ui_url: str | None = Field(default=None, description="Where people open the "
                                      "MLflow UI (the dashboard links runs there); default: "
                                      "the tracking URI when it is a server, else "
                                      "http://127.0.0.1:5000 (`mlflow ui`)")
    cookie_secure: bool = Field(default=False, description="Send the session cookie over "
                                "HTTPS only (set it behind TLS)")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0,
                                  description="Largest file an HTTP upload may send")
    ingest_inline_max_bytes: int = Field(default=16 * 1024 * 1024, ge=0, description="An "
                                         "upload larger than this is ingested by a job "
                                         "(202), not inside the request")
    ingest_chunk: int = Field(default=5_000, ge=1, le=1_000_000, description="Rows per "
                              "committed chunk of an ingest job")
    queue_url: str | None = Field(default=None, description="The job queue (huey): "
                                  "default, a SQLite file <home>/queue.db with a worker "
                                  "thread in `labelloop serve`; redis://host:6379/0 in "
                                  "production, with `labelloop worker` processes")
    job_worker: bool = Field(default=True, description="Run a job worker thread inside "
                             "`labelloop serve` (turn off when `labelloop worker` runs apart)")
    warm_caches: bool = Field(default=True, description="At start, `labelloop serve` reads "
                              "each project's pool predictions into memory in a background "
                              "thread, so a first next-batch at a million items is not slow")
    job_process_kinds: list[str] = Field(default=["train"], description="Kinds of job the "
                                         "worker thread inside `labelloop serve` runs in a "
                                         "child process: CPU-bound Python there would take "
                                         "the GIL from the requests (50 annotators during "
                                         "training, SQLite: p99 1.0 s in the thread, 0.24 s "
                                         "in a child)")
    job_chunk: int = Field(default=512, ge=1, le=100_000, description="Items per committed "
                           "chunk of a job: killed, it loses at most one chunk of work")
    job_stale_s: float = Field(default=60.0, gt=0, description="A running job whose worker "
                               "has not reported for this long is taken over by another")
    prelabel_inline_max: int = Field(default=2_000, ge=0, description="The most items a "
                                     "next-batch request pre-labels itself; more is a "
                                     "pre-labeling job's work (409 until it has run)")
    compute: Literal["local", "ray"] = Field(default="local", description="Where embedding "
                                              "runs: in this process, or on Ray actors "
                                              "(prelabel.distributed)")
    ray_address: str | None = Field(default=None, description="A Ray cluster to join "
                                    "(\"auto\", or ray://host:10001); default: start a local "
                                    "one")
    embed_batch_size: int = 64
    max_text_chars: int = Field(default=20_000, description="Longer text fields are rejected")
    show_progress: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("LABELLOOP_CONFIG", "labelloop.toml")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'labelloop.db'}"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        env = os.environ.get("MLFLOW_TRACKING_URI")
        return env or f"sqlite:///{self.home.resolve() / 'mlflow.db'}"

    @property
    def queue(self) -> str:
        return self.queue_url or f"sqlite:///{self.home.resolve() / 'queue.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.home.resolve() / "mlartifacts"

    @property
    def export_dir(self) -> Path:
        return self.home.resolve() / "exports"

    @property
    def uploads_dir(self) -> Path:
        """Uploads kept for the ingest jobs that read them (shared with remote workers)."""
        return self.home.resolve() / "uploads"

    def session_secret(self) -> str:
        """``secret_key``, else one made at first use and kept (mode 600) under home."""
        if self.secret_key:
            return self.secret_key
        path = self.home.resolve() / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                return path.read_text().strip()
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the LABELLOOP_* environment a child process reads them back from."""
    out = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            out[f"LABELLOOP_{name.upper()}"] = (value if isinstance(value, str)
                                                else json.dumps(value))
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` instead)."""
    return Settings()
