"""Explanations: exact for every Kim TextCNN variant and backend, approximate (and marked so) for
DPCNN; the CLI verb and POST /v1/explain."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from textcnn.classifier import TextClassifier
from textcnn.cli import main
from textcnn.config import TokenizerConfig, from_dict
from textcnn.models import DPCNN, TextCNN
from textcnn.tokenizer import train_tokenizer

TEXTS = ["a gorgeous, witty film", "", "dull", "a b", "Ça ne marche pas: l'été, naïve café 😀",
         "not good at all , and far too long " * 4]
HEADS = {"sentiment": ["negative", "positive"], "topic": ["film", "food", "sport"]}
TOL = 1e-5


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS + ["a good film", "a bad meal", "sport today"],
                           TokenizerConfig(max_length=64))


def kim(tokenizer, variant: str) -> TextCNN:
    """A two-head Kim TextCNN with random weights in one of Kim's variants (or ours)."""
    torch.manual_seed(0)
    kwargs = {"static": {"embedding_mode": "static"}, "non-static": {},
              "multichannel": {"embedding_mode": "multichannel"},
              "private": {"private_channels": 3}, "batch-norm": {"norm": "batch"}}.get(variant, {})
    model = TextCNN(tokenizer.get_vocab_size(), {h: len(v) for h, v in HEADS.items()},
                    embedding_dim=8, kernel_sizes=(1, 3, 5), channels=6, **kwargs)
    if variant in ("static", "non-static", "multichannel"):  # "pretrained" vectors
        model.load_pretrained(torch.randn(tokenizer.get_vocab_size(), 8))
    if variant == "batch-norm":
        for block in model.core.blocks:
            block.norm.running_mean.uniform_(-1, 1)
            block.norm.running_var.uniform_(0.5, 2.0)
            block.norm.weight.data.uniform_(-1, 1)  # negative scales too
    return model.eval()


def classifier(model, tokenizer, backend: str) -> TextClassifier:
    config = from_dict({"tasks": {h: {"dataset": "sst2"} for h in HEADS}})
    return TextClassifier(model, tokenizer, config, HEADS, backend=backend)


def reference_windows(model: TextCNN, ids: list[int], head: str, label: int) -> dict:
    """Brute force, loop by loop: which window each filter pools and what it adds to the logit."""
    table = model.input_table().detach().numpy()
    padded = ids + [0] * max(0, max(model.core.kernel_sizes) - len(ids))
    weight = np.zeros(model.core.out_features)
    layer = model.heads.layers[head]
    columns = (list(range(model.core.out_features)) if model.heads.select is None
               else model.heads.select[list(HEADS).index(head)].tolist())
    weight[columns] = layer.weight[label].detach().numpy()
    windows, column = {}, 0
    for k, block in zip(model.core.kernel_sizes, model.core.blocks):
        w, b = block.conv.weight.detach().numpy(), block.conv.bias.detach().numpy()
        scale, shift = np.ones(len(b)), np.zeros(len(b))
        if isinstance(block.norm, torch.nn.BatchNorm1d):  # at inference: per-filter affine
            n = block.norm
            scale = (n.weight / torch.sqrt(n.running_var + n.eps)).detach().numpy()
            shift = (n.bias - n.running_mean * n.weight / torch.sqrt(n.running_var + n.eps)
                     ).detach().numpy()
        for f in range(w.shape[0]):
            values = [(sum(table[padded[t + j]] @ w[f, :, j] for j in range(k)) + b[f])
                      * scale[f] + shift[f] for t in range(max(len(ids) - k + 1, 1))]
            t = int(np.argmax(values))
            span = (min(t, len(ids)), min(t + k, len(ids)))
            term = weight[column] * max(values[t], 0.0)
            if term:
                windows[span] = windows.get(span, 0.0) + term
            column += 1
    return windows


def check_exact(clf: TextClassifier, rows: list[dict]) -> None:
    """Contributions + bias = logit, tokens + bias = logit, and logit / score / label are the
    backend's own."""
    probabilities = clf.predict_proba(TEXTS)
    logits = clf.engine.logits(clf.prepare(TEXTS), 8)
    for i, row in enumerate(rows):
        assert [row["text"][t["start"]:t["end"]] for t in row["tokens"]] == [
            t["text"] for t in row["tokens"]]
        for head, a in row["heads"].items():
            label = clf.heads[head].index(a["label"])
            assert a["exact"] is True and a["method"] == "max-pool windows"
            assert label == int(np.argmax(logits[head][i]))
            assert a["logit"] == pytest.approx(float(logits[head][i, label]), abs=TOL)
            assert a["score"] == pytest.approx(float(probabilities[head][i, label]), abs=TOL)
            total = a["bias"] + sum(w["contribution"] for w in a["windows"])
            assert abs(total - a["logit"]) < TOL
            assert len(a["token_attributions"]) == len(row["tokens"])
            if row["tokens"]:
                assert abs(a["bias"] + sum(a["token_attributions"]) - a["logit"]) < TOL
            for w in a["windows"]:
                assert w["text"] == row["text"][w["char_start"]:w["char_end"]]


VARIANTS = ["rand", "static", "non-static", "multichannel", "private", "batch-norm"]


@pytest.mark.parametrize("variant,backend", [(v, b) for v in VARIANTS for b in ("torch", "folded")]
                         + [("rand", "onnx"), ("private", "onnx")])  # onnx: the torch network
def test_kim_explanations_are_exact(tokenizer, variant, backend):
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    if backend == "folded" and variant == "batch-norm":
        with pytest.raises(Exception, match="does not fit"):
            classifier(kim(tokenizer, variant), tokenizer, backend)
        return
    model = kim(tokenizer, variant)
    clf = classifier(model, tokenizer, backend)
    assert clf.backend == backend
    rows = clf.explain(TEXTS, top_k=None)
    check_exact(clf, rows)
    ids, lengths = clf.encode(TEXTS)
    for i, row in enumerate(rows):  # every window is the one the filters really pooled
        for head, a in row["heads"].items():
            want = reference_windows(model, ids[i, :lengths[i]].tolist(), head,
                                     clf.heads[head].index(a["label"]))
            got = {(w["start"], w["end"]): w["contribution"] for w in a["windows"]}
            assert set(got) == set(want)
            assert [got[s] for s in want] == pytest.approx(list(want.values()), abs=TOL)


def test_trained_model_folded_and_torch_agree(trained):
    clf, folder = trained
    folded = TextClassifier.from_pretrained(folder, backend="folded")
    torch_clf = TextClassifier.from_pretrained(folder, backend="torch")
    check_exact(folded, folded.explain(TEXTS, top_k=None))
    check_exact(torch_clf, torch_clf.explain(TEXTS, top_k=None))
    a, b = folded.explain(TEXTS, top_k=3), torch_clf.explain(TEXTS, top_k=3)
    for x, y in zip(a, b):
        wa, wb = x["heads"]["sentiment"]["windows"], y["heads"]["sentiment"]["windows"]
        assert [(w["start"], w["end"]) for w in wa] == [(w["start"], w["end"]) for w in wb]
        assert len(wa) <= 3
        contributions = [w["contribution"] for w in wa]
        assert contributions == sorted(contributions, reverse=True)


def test_batch_independence_head_and_top_k(tokenizer):
    clf = classifier(kim(tokenizer, "private"), tokenizer, "folded")
    together = clf.explain(TEXTS, top_k=2)
    alone = [clf.explain([t], top_k=2)[0] for t in TEXTS]
    for x, y in zip(together, alone):
        assert x["tokens"] == y["tokens"] and x["heads"].keys() == y["heads"].keys()
        for head in x["heads"]:
            wx, wy = x["heads"][head]["windows"], y["heads"][head]["windows"]
            assert [w["text"] for w in wx] == [w["text"] for w in wy] and len(wx) <= 2
            assert [w["contribution"] for w in wx] == pytest.approx(
                [w["contribution"] for w in wy], abs=TOL)
    only = clf.explain(TEXTS[:1], head="topic")[0]["heads"]
    assert list(only) == ["topic"]
    with pytest.raises(Exception, match="unknown head"):
        clf.explain(TEXTS, head="nope")
    with pytest.raises(Exception, match="top_k"):
        clf.explain(TEXTS, top_k=0)
    assert clf.explain("a film") == clf.explain(["a film"])  # a bare string is one text
    assert clf.explain([]) == []


def test_dpcnn_falls_back_to_integrated_gradients(tokenizer):
    torch.manual_seed(0)
    model = DPCNN(tokenizer.get_vocab_size(), {h: len(v) for h, v in HEADS.items()},
                  embedding_dim=8, channels=6, depth=2).eval()
    clf = classifier(model, tokenizer, "torch")
    rows = clf.explain(TEXTS, top_k=2)
    logits = clf.engine.logits(clf.prepare(TEXTS), 8)
    ids, lengths = clf.encode(TEXTS)
    with torch.no_grad():
        empty = model(torch.zeros(len(TEXTS), ids.shape[1], dtype=torch.long),
                      torch.as_tensor(lengths))
    for i, row in enumerate(rows):
        for head, a in row["heads"].items():
            label = clf.heads[head].index(a["label"])
            assert a["exact"] is False and a["method"].startswith("integrated gradients")
            assert a["logit"] == pytest.approx(float(logits[head][i, label]), abs=TOL)
            assert a["bias"] == pytest.approx(float(empty[head][i, label]), abs=TOL)
            gap = a["logit"] - a["bias"]  # IG's completeness: approximately the tokens' sum
            assert sum(a["token_attributions"]) == pytest.approx(gap, abs=0.05 * abs(gap) + 1e-3)
            assert len(a["windows"]) <= 2 and len(a["token_attributions"]) == len(row["tokens"])


# -- the CLI and the HTTP endpoint --------------------------------------------------------------
def test_cli_explain_json_lines_and_terminal(trained, capsys, monkeypatch):
    _, folder = trained
    assert main(["explain", str(folder), "a gorgeous, witty film", "dull", "--top-k", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["a gorgeous, witty film", "dull"]
    assert rows == TextClassifier.from_pretrained(folder).explain(
        ["a gorgeous, witty film", "dull"], top_k=2)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["explain", str(folder), "a gorgeous, witty film"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sentiment: ") and "\x1b[48;2;" in out and "exact" in out
    assert main(["explain", str(folder), "dull", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "dull"
    assert main(["explain", str(folder), "dull", "--head", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown head 'nope'")


def test_http_explain(trained):
    from fastapi.testclient import TestClient

    from textcnn.serve import ServeSettings, create_app

    clf, folder = trained
    settings = ServeSettings(max_texts=8, max_chars=400, max_body_bytes=3000)
    with TestClient(create_app(folder, settings)) as c:
        r = c.post("/v1/explain", json={"texts": TEXTS, "top_k": 2})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        want = TextClassifier.from_pretrained(folder).explain(TEXTS, top_k=2)
        assert r.json() == {"explanations": json.loads(json.dumps(want))}
        r = c.post("/v1/explain", json={"texts": ["dull"], "head": "sentiment"})
        assert len(r.json()["explanations"][0]["heads"]["sentiment"]["windows"]) <= 5
        for body, status, field, kind in [
            ({"texts": ["a"] * 9}, 422, "texts", "too_many_texts"),
            ({"texts": ["x" * 401]}, 422, "texts[0]", "text_too_long"),
            ({"texts": ["a"], "head": "nope"}, 422, "head", "literal_error"),
            ({"texts": ["a"], "top_k": 0}, 422, "top_k", "greater_than_equal"),
            ({"texts": []}, 422, "texts", "empty_texts"),
            ({"texts": ["a"], "other": 1}, 422, "other", "extra_forbidden"),
            ({"texts": ["x" * 400] * 8}, 413, "body", "body_too_large"),
        ]:
            r = c.post("/v1/explain", json=body)
            detail = r.json()["detail"][0]
            assert (r.status_code, detail["field"], detail["type"]) == (status, field, kind)
        assert c.post("/v1/explain", json={"texts": ["a"] * 9}).json()["detail"][0][
            "limit"] == {"name": "max_texts", "value": 8}
        r = c.post("/v1/explain", content=b'{"texts": ["a"]}',
                   headers={"content-type": "text/plain"})
        assert r.status_code == 415 and r.json()["detail"][0]["type"] == "unsupported_media_type"
        r = c.post("/v1/explain", content=b'{"texts": ["\xff"]}')
        assert r.status_code == 400 and r.json()["detail"][0]["type"] == "utf8_invalid"
        assert c.post("/v1/explain", content=b"not json").status_code == 422
        assert c.get("/v1/explain").status_code == 405
        spec = c.get("/openapi.json").json()["paths"]["/v1/explain"]["post"]
        assert {"200", "413", "415", "422"} <= set(spec["responses"])


def test_deletion_script(trained, sst2_slice, tmp_path):
    """scripts/explain_deletion.py: deletes the right characters and writes its summary."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "explain_deletion.py"
    spec = importlib.util.spec_from_file_location("explain_deletion", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    tokens = [{"start": 0, "end": 1}, {"start": 2, "end": 8}, {"start": 9, "end": 13}]
    assert script.delete("a strong film", tokens, [(1, 2), (0, 2)]) == "    film"
    assert script.delete("a strong film", tokens, [(2, 3)]) == "a strong  "
    assert script.random_spans(__import__("random").Random(0), 2, [3]) == [(0, 2)]
    out = tmp_path / "deletion.json"
    code = script.main([str(trained[1]), "--dataset", str(sst2_slice), "--limit", "40",
                        "--draws", "3", "--output", str(out)])
    summary = json.loads(out.read_text())
    assert summary["sentences"] == 40 and code == (0 if summary["passes"] else 1)
    assert summary["ratio"] == pytest.approx(
        summary["mean_drop_top2"] / summary["mean_drop_random2"], abs=0.05)
