"""Fine-tuned encoder versions: where a project's tuned encoders live and how they load.

A model trained on a fine-tuned encoder (``prelabel.finetune``) records the encoder's key in
``ModelVersion.encoder``, as every model does; a tuned key is ``tuned/project-<id>/<hex>``,
a folder under ``<home>/encoders/``. Its vectors are cached under that key like any other
encoder's (``prelabel.cache``), so a tuned version never mixes with the base encoder's, and
the base encoder's vectors stay for the models that read them. Every stage that embeds for a
model (pre-labeling, next-batch, training) asks ``encoder_of`` for that model's encoder.
"""

from __future__ import annotations

import shutil
import uuid
from functools import lru_cache
from pathlib import Path

from labelloop.core.errors import ValidationError
from labelloop.core.settings import Settings
from labelloop.prelabel.encoders import Encoder, pick_device

PREFIX = "tuned/"


def is_tuned(key: str | None) -> bool:
    return bool(key) and str(key).startswith(PREFIX)


def new_key(project_id: int) -> str:
    """A fresh, never reused key for a tuned encoder of ``project_id``."""
    return f"{PREFIX}project-{project_id}/{uuid.uuid4().hex[:16]}"


def folder(settings: Settings, key: str) -> Path:
    """Where the tuned encoder ``key`` is (or is to be) written."""
    if not is_tuned(key) or ".." in key:
        raise ValidationError(f"{key!r} is not a tuned encoder key", where="encoder")
    return settings.home.resolve() / "encoders" / key[len(PREFIX):]


def exists(settings: Settings, key: str) -> bool:
    return (folder(settings, key) / "config.json").is_file()


def remove(settings: Settings, key: str) -> None:
    shutil.rmtree(folder(settings, key), ignore_errors=True)


def load(settings: Settings, key: str) -> Encoder:
    """The tuned encoder ``key``, in fp32 torch (its answers were checked in that runtime),
    loaded once per process. ValidationError when its folder is gone."""
    path = folder(settings, key)
    if not (path / "config.json").is_file():
        raise ValidationError(f"tuned encoder {key} is missing from {path}", where="encoder")
    return _load(str(path), key, pick_device(settings.device))


@lru_cache(maxsize=4)
def _load(path: str, key: str, device: str) -> Encoder:
    return Encoder(name=key, path=Path(path), device=device)
