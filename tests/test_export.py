"""ONNX export and the onnxruntime predictor: parity with torch on every kind of length."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from textcnn.backends.onnx import parity, session, to_onnx  # noqa: E402
from textcnn.classifier import load  # noqa: E402
from textcnn.cli import main  # noqa: E402
from textcnn.errors import ModelFolderError, TextCNNError  # noqa: E402
from textcnn.export import export  # noqa: E402
from textcnn.folder import ONNX  # noqa: E402

# empty, 1 token, 2 and 4 tokens (< the widest kernel, 5), unknown words, long, truncated
TEXTS = ["", "good", "not good", "a b c d", "zzzqqq xxyyzz", "a gorgeous , witty film",
         "the acting is fine but the script is a dull , plodding mess " * 4,
         "word " * 200]


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """A copy of the trained folder with model.onnx written by `textcnn export`."""
    _, folder = trained
    copy = tmp_path_factory.mktemp("export") / "model"
    shutil.copytree(folder, copy)
    return copy


def test_export_cli_writes_a_graph_with_dynamic_axes(exported, capsys):
    assert main(["export", str(exported), "--format", "onnx"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == str(exported / ONNX) and out["max_abs_diff"] < 1e-5
    sess = session(exported / ONNX)
    inputs = {i.name: i for i in sess.get_inputs()}
    assert list(inputs) == ["ids", "lengths"]
    assert inputs["ids"].shape == ["batch", "time"] and inputs["lengths"].shape == ["batch"]
    assert [o.name for o in sess.get_outputs()] == ["sentiment"]
    assert sess.get_outputs()[0].shape[0] == "batch"


def test_onnx_and_torch_give_the_same_probabilities(trained, exported):
    clf, _ = trained
    to_onnx(clf.model, list(clf.heads))
    assert not clf.model.training  # exporting leaves the model in eval mode (no dropout)
    if not (exported / ONNX).exists():
        export(exported)
    onnx = load(exported, backend="onnx", threads=1)
    assert onnx.backend == "onnx"
    _, lengths = clf.encode(TEXTS)
    assert lengths[:4].tolist() == [0, 1, 2, 4] and lengths.max() == 64  # truncated
    want, got = clf.predict_proba(TEXTS), onnx.predict_proba(TEXTS)
    for batch_size in (3, 500):  # several sorted batches, each padded differently
        again = onnx.predict_proba(TEXTS, batch_size=batch_size)
        np.testing.assert_allclose(again["sentiment"], got["sentiment"], atol=1e-6, rtol=0)
    assert got["sentiment"].shape == (len(TEXTS), 2)
    np.testing.assert_allclose(got["sentiment"], want["sentiment"], atol=1e-5, rtol=0)
    for t in TEXTS[:4]:  # each short text alone: the graph sees a batch of width 5
        np.testing.assert_allclose(onnx.predict_proba([t])["sentiment"],
                                   clf.predict_proba([t])["sentiment"], atol=1e-5, rtol=0)
    assert [p["sentiment"][0]["label"] for p in onnx.predict(TEXTS)] == \
        [p["sentiment"][0]["label"] for p in clf.predict(TEXTS)]
    assert onnx.predict([]) == [] and onnx.predict_proba([])["sentiment"].shape == (0, 2)
    vocab = clf.tokenizer.get_vocab_size()
    assert parity(clf.engine, onnx.engine, ["sentiment"], vocab, n=32) < 1e-5  # lengths 0..40
    with pytest.raises(TypeError):
        onnx.predict(["a text", None])


def test_stale_or_corrupt_graph(trained, exported, tmp_path):
    clf, _ = trained
    folder = tmp_path / "model"
    shutil.copytree(exported, folder)
    (folder / ONNX).write_bytes(b"not an onnx graph")
    os.utime(folder / ONNX, (1, 1))  # older than the weights: ignored, exported in memory
    onnx = load(folder, backend="onnx")
    np.testing.assert_allclose(onnx.predict_proba(TEXTS)["sentiment"],
                               clf.predict_proba(TEXTS)["sentiment"], atol=1e-5, rtol=0)
    os.utime(folder / ONNX)  # newer: used, and it is corrupt
    with pytest.raises(ModelFolderError, match="cannot load"):
        load(folder, backend="onnx")
    with pytest.raises(TextCNNError, match="format"):
        export(folder, fmt="tflite")
