"""The same encoder run by ONNX Runtime: exported once from the ``transformers`` model.

``OnnxEncoder`` tokenizes like ``Encoder`` and mean-pools the exported model's
``last_hidden_state`` in NumPy, so its vectors match the torch ones (cosine > 0.99999 on the
packaged MiniLM). With ``quantize=True`` the exported graph is quantised by ONNX Runtime
(dynamic int8, per-channel weights). The export is cached on disk per model folder, weights
file and torch version, so it happens once per machine (a few seconds).

Whether the result may be used is decided by ``prelabel.encoders.load_checked``: a runtime is
taken only if it keeps the pre-labeler's answers (``prelabel.runtime_check``). fp32 ONNX does
(the same labels as fp32 torch); the int8 graph moves 2-6% of them and is refused
(benchmarks/prelabel_throughput.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labelloop.prelabel.encoders import Encoder

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_cache_dir() -> Path:
    """``$LABELLOOP_ONNX_CACHE``, else ``~/.cache/labelloop/onnx``."""
    return Path(os.environ.get("LABELLOOP_ONNX_CACHE",
                               Path.home() / ".cache" / "labelloop" / "onnx")).expanduser()


def _model_digest(path: Path, quantize: bool) -> str:
    import torch

    h = hashlib.sha256(f"{path.resolve()}|{torch.__version__}|int8={quantize}".encode())
    for f in sorted(path.glob("*")):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin"):
            stat = f.stat()
            h.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def export_onnx(model: object, tokenizer: object, target: Path) -> Path:
    """Export a ``transformers`` encoder to ``target`` (dynamic batch and sequence axes)."""
    import torch

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = tokenizer(["an example", "a second, longer example text"],  # type: ignore[operator]
                       padding=True, return_tensors="pt")
    args = tuple(sample.get(k, torch.zeros_like(sample["input_ids"])) for k in _INPUTS)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    axes = {k: {0: "batch", 1: "seq"} for k in (*_INPUTS, "last_hidden_state")}
    torch.onnx.export(_Hidden(model).eval(), args, str(tmp), input_names=list(_INPUTS),
                      output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
                      dynamo=False)
    tmp.replace(target)  # atomic: a concurrent reader never sees half a file
    return target


def _quantize(source: Path, target: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(target)
    return target


@dataclass
class OnnxEncoder(Encoder):
    """``Encoder`` with the forward pass in ONNX Runtime (CUDA provider when present)."""

    _session: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import onnxruntime as ort
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self._config = AutoConfig.from_pretrained(str(self.path))
        folder = onnx_cache_dir() / _model_digest(self.path, self.quantize)
        fp32 = folder / "model.onnx"
        if not fp32.is_file():
            export_onnx(AutoModel.from_pretrained(str(self.path)).eval(), self._tokenizer, fp32)
        model_file = fp32
        if self.quantize:
            model_file = folder / "model.int8.onnx"
            if not model_file.is_file():
                _quantize(fp32, model_file)
        providers = ["CPUExecutionProvider"]
        if self.device.startswith("cuda") and \
                "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            self.device = "cpu"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(model_file), options, providers=providers)
        self._feeds = [i.name for i in self._session.get_inputs()]
        self.model_file = model_file

    @property
    def key(self) -> str:
        """fp32 ONNX vectors equal the torch ones to float rounding, so they share the cache;
        int8 vectors differ and are cached apart."""
        return f"{self.name}{'@onnx-int8' if self.quantize else ''}"

    @property
    def dim(self) -> int:
        return int(self._config.hidden_size)

    def forward(self, texts: Sequence[str]) -> np.ndarray:
        enc = self._tokenizer(list(texts), padding=True, truncation=True,  # type: ignore[operator]
                              max_length=self.max_length, return_tensors="np")
        ids = enc["input_ids"].astype(np.int64)
        feeds = {k: enc[k].astype(np.int64) if k in enc else np.zeros_like(ids)
                 for k in self._feeds}
        hidden = self._session.run(None, feeds)[0]  # type: ignore[attr-defined]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
