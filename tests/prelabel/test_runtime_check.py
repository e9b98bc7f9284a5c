"""A faster encoder runtime is taken only if the pre-labeler's answers stay the same: real
MiniLM in torch and ONNX Runtime, real heads, real BANKING77 texts (issue 15)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from labelloop.prelabel.encoders import Encoder, load_checked, load_encoder, resolve_model_path
from labelloop.prelabel.onnx_encoder import OnnxEncoder
from labelloop.prelabel.runtime_check import RuntimeComparison, compare_runtimes


def test_the_bar_is_agreement_995_and_a_macro_f1_drop_of_at_most_0005():
    def comparison(agreement: float, same: float, f1: float) -> RuntimeComparison:
        return RuntimeComparison(agreement, same, f1_reference=0.80, f1_candidate=f1,
                                 n_train=100, n_test=1000)

    assert comparison(0.995, 0.995, 0.795).passes
    assert not comparison(0.994, 1.0, 0.80).passes  # changes 6 answers in 1,000
    assert not comparison(1.0, 0.994, 0.80).passes  # the live (fp32-trained) head would
    assert not comparison(1.0, 1.0, 0.7949).passes  # a drop of 0.0051
    assert comparison(0.999, 1.0, 0.83).passes  # better is fine


def test_fp32_against_itself_and_onnx_fp32_pass(banking):
    X, y, texts = banking  # noqa: N806  (300 texts, 10 intents)
    same = compare_runtimes(X, X, y, n_train=150)
    assert same.agreement == same.same_head_agreement == 1.0 and same.f1_drop == 0.0
    assert same.passes and same.n_test == 150 and same.f1_reference > 0.7
    onnx = compare_runtimes(X, load_encoder(runtime="onnx").encode(texts), y, n_train=150)
    assert onnx.passes, str(onnx)


def test_an_encoder_that_changes_answers_is_refused(banking):
    X, y, texts = banking  # noqa: N806
    # Deliberately degraded: the same MiniLM reading only the first 8 tokens of each text.
    short = Encoder(name="minilm-8-tokens", path=resolve_model_path("minilm"), device="cpu",
                    max_length=8)
    refused = compare_runtimes(X, short.encode(texts), y, n_train=150)
    assert not refused.passes
    assert refused.agreement < 0.97 and refused.f1_drop > 0.005, str(refused)


def test_load_checked_takes_onnx_fp32_and_falls_back_from_torch_int8(caplog):
    load_checked.cache_clear()  # check here, whatever ran before in this process
    onnx = load_checked(runtime="onnx")
    assert isinstance(onnx, OnnxEncoder) and onnx.model_file.is_file()
    assert onnx.key == load_encoder().key  # same vectors, same embedding cache
    # torch's int8 Linear layers move a few percent of the probe's labels: fp32 instead
    with caplog.at_level(logging.WARNING, logger="labelloop.prelabel.encoders"), \
            pytest.warns(UserWarning, match="torch int8 changes the pre-labeler's answers"):
        chosen = load_checked(runtime="torch", quantize=True)
    assert type(chosen) is Encoder and not chosen.quantize and chosen.key == onnx.key
    assert "using fp32 torch" in caplog.text
    texts = ["I lost my card", "Why was my transfer declined twice this week?"]
    assert np.allclose(chosen.encode(texts), load_encoder().encode(texts))
