"""Pretrained embeddings: vector readers, Kim's OOV rule, static and multichannel modes, and
Hugging Face model folders (tiny files written by the tests)."""

from __future__ import annotations

import gzip
import io
import json
import struct
import sys
import zipfile

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

import textcnn.sources
from conftest import tiny_config
from textcnn.backends.folded import FoldedTextCNN
from textcnn.classifier import TextClassifier
from textcnn.config import from_dict
from textcnn.embeddings import (
    match_vocabulary,
    pretrained_matrix,
    read_text_vectors,
    read_vectors,
    read_word2vec_binary,
)
from textcnn.errors import ConfigError, DataError
from textcnn.modality import load_datasets
from textcnn.models import TextCNN
from textcnn.runs import train_and_evaluate
from textcnn.sources import resolve_source, split_zip_parts

WORDS = {"good": [1.0, 2.0, 3.0], "Film": [0.5, -0.5, 0.25], "film": [9.0, 9.0, 9.0],
         "bad": [-1.0, -2.0, -3.5]}


def write_binary(path, words, newline=True):
    with open(path, "wb") as fh:
        fh.write(f"{len(words)} 3\n".encode())
        for w, v in words.items():
            fh.write(w.encode() + b" " + struct.pack("<3f", *v) + (b"\n" if newline else b""))


def write_text(path, words, header=True):
    lines = [f"{len(words)} 3"] if header else []
    lines += [" ".join([w, *map(str, v)]) for w, v in words.items()]
    data = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(data)
    else:
        path.write_text(data, encoding="utf-8")


# -- readers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bin", "bin-no-newline", "vec", "glove", "gz"])
def test_every_format_reads_the_same_vectors(tmp_path, kind):
    path = tmp_path / {"bin": "v.bin", "bin-no-newline": "v.bin", "vec": "v.vec",
                       "glove": "v.txt", "gz": "v.txt.gz"}[kind]
    if kind.startswith("bin"):
        write_binary(path, WORDS, newline=kind == "bin")
    else:
        write_text(path, WORDS, header=kind != "glove")
    vectors, dim = read_vectors(path)
    assert dim == 3 and set(vectors) == set(WORDS)
    for w, v in WORDS.items():
        np.testing.assert_allclose(vectors[w], v)
    # only wanted words are kept; an exact match wins over a word that lower-cases to it
    vectors, _ = read_vectors(path, {"film", "bad", "zzz"})
    assert set(vectors) == {"film", "bad"}
    np.testing.assert_allclose(vectors["film"], WORDS["film"])
    vectors, _ = read_vectors(path, {"good", "Good".lower()})
    assert set(vectors) == {"good"}


def test_lower_cased_fallback_takes_the_first_spelling(tmp_path):
    path = tmp_path / "cased.txt"
    write_text(path, {"Paris": [1, 1, 1], "PARIS": [2, 2, 2], "rome": [3, 3, 3]}, header=False)
    vectors, _ = read_text_vectors(path, {"paris", "rome"})
    np.testing.assert_allclose(vectors["paris"], [1, 1, 1])


def test_bad_vector_files_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("good 1 2 3\nbad 1 2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.txt:2: 2 values, expected 3 \(word 'bad'\)"):
        read_text_vectors(path)
    path.write_text("good 1 2 3\nbad 1 x 3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.txt:2: a value of word 'bad' is not a number"):
        read_text_vectors(path)
    binary = tmp_path / "v.bin"
    write_binary(binary, WORDS)
    binary.write_bytes(binary.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"v.bin: truncated in the vector of word 4 of 4"):
        read_word2vec_binary(binary)
    binary.write_bytes(b"not a header\n")
    with pytest.raises(DataError, match=r"v.bin:1: a word2vec binary file starts with"):
        read_word2vec_binary(binary)


# -- Kim's OOV rule ----------------------------------------------------------------------------
def test_unknown_words_get_the_vectors_variance():
    rng = np.random.default_rng(1)
    known = {f"w{i}": rng.normal(0, 0.3, 50).astype(np.float32) for i in range(500)}
    vocab = {"[PAD]": 0, "[UNK]": 1, **{f"w{i}": i + 2 for i in range(500)},
             **{f"oov{i}": 502 + i for i in range(1500)}}
    matrix, hits, a = match_vocabulary(vocab, known, 50)
    assert hits == 500 and matrix.shape == (2002, 50)
    np.testing.assert_array_equal(matrix[0], 0.0)
    np.testing.assert_array_equal(matrix[2], known["w0"])
    values = np.stack(list(known.values()))
    assert a == pytest.approx(np.sqrt(3 * values.var()))
    oov = matrix[502:]
    assert np.abs(oov).max() <= a
    assert oov.var() == pytest.approx(values.var(), rel=0.05)


# -- static and multichannel -------------------------------------------------------------------
@pytest.mark.parametrize("model_name", ["textcnn", "dpcnn"])
def test_frozen_tables_stay_frozen_in_training(sst2_slice, tmp_path, model_name):
    vectors = tmp_path / "vectors.txt"
    rng = np.random.default_rng(0)
    words = ["the", "a", "film", "good", "bad", "movie", "is", "and", "of", "it"]
    vectors.write_text("".join(f"{w} {' '.join(f'{x:.4f}' for x in rng.normal(0, .3, 32))}\n"
                               for w in words), encoding="utf-8")
    results = {}
    for mode in ("static", "multichannel", "non-static"):
        cfg = tiny_config(sst2_slice, epochs=1, weight_decay=0.01)
        cfg["model"].update(pretrained=str(vectors), embedding_mode=mode, name=model_name)
        if model_name == "dpcnn":  # kernel_sizes is a textcnn key
            cfg["model"]["depth"] = 2
            del cfg["model"]["kernel_sizes"]
        config = from_dict(cfg)
        lines = []
        clf, _ = train_and_evaluate(config, load_datasets(config), log=lines.append,
                                    write_folder=False)
        report = next(line for line in lines if line.startswith("pretrained"))
        assert "10 of" in report and f"embeddings {mode}" in report
        tok = clf.tokenizer
        film = tok.token_to_id("film")
        want = torch.tensor([float(x) for x in vectors.read_text().splitlines()[2].split()[1:]])
        model = clf.model
        trained_row = model.embedding.weight[film]
        results[mode] = trained_row
        if mode == "static":
            torch.testing.assert_close(trained_row, want, atol=1e-4, rtol=0)
            assert not model.embedding.weight.requires_grad
        if mode == "multichannel":
            torch.testing.assert_close(model.static.weight[film], want, atol=1e-4, rtol=0)
            assert (trained_row - want).abs().max() > 1e-3  # the other channel learned
            first = model.region if model_name == "dpcnn" else model.core.blocks[0]
            assert first.conv.in_channels == 64
        if mode == "non-static":
            assert (trained_row - want).abs().max() > 1e-3


def test_multichannel_round_trip_and_folding(trained, tmp_path):
    clf, _ = trained
    torch.manual_seed(0)
    cfg = clf.config
    cfg.model.pretrained, cfg.model.embedding_mode = "unused-after-training", "multichannel"
    model = TextCNN(clf.tokenizer.get_vocab_size(), {"sentiment": 2}, embedding_dim=32,
                    channels=16, embedding_mode="multichannel").eval()
    model.load_pretrained(torch.randn(clf.tokenizer.get_vocab_size(), 32))
    with torch.no_grad():
        model.embedding.weight[5:] += 0.1  # the channels differ, as after training
    folder = TextClassifier(model, clf.tokenizer, cfg, clf.heads).save(tmp_path / "m")
    back = TextClassifier.from_pretrained(folder, backend="torch")
    texts = ["a gorgeous , witty film", "", "dull"]
    np.testing.assert_array_equal(back.predict_proba(texts)["sentiment"],
                                  TextClassifier(model, clf.tokenizer, cfg, clf.heads)
                                  .predict_proba(texts)["sentiment"])
    ids = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 0, 0, 0]])
    lengths = torch.tensor([4, 2])
    torch.testing.assert_close(FoldedTextCNN(model)(ids, lengths)["sentiment"],
                               model(ids, lengths)["sentiment"], atol=1e-5, rtol=0)


# -- Hugging Face model folders ----------------------------------------------------------------
def write_model_folder(folder, texts):
    folder.mkdir(parents=True)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], show_progress=False))
    tok.enable_padding()  # as many hub tokenizers ship; textcnn must turn it off
    tok.save(str(folder / "tokenizer.json"))
    rng = np.random.default_rng(0)
    matrix = rng.normal(0, 0.05, (tok.get_vocab_size(), 24)).astype(np.float32)
    save_file({"embeddings.word_embeddings.weight": matrix,
               "encoder.layer.0.weight": np.zeros((4, 4), np.float32)},
              str(folder / "model.safetensors"))
    return tok, matrix


def test_model_folder_supplies_tokenizer_and_embeddings(sst2_slice, tmp_path):
    texts = [json.loads(line)["text"] for line in (sst2_slice / "train.jsonl").open()]
    tok, matrix = write_model_folder(tmp_path / "hf", texts[:500])
    cfg = tiny_config(sst2_slice, epochs=1)
    cfg["tokenizer"] = {"kind": "pretrained", "max_length": 16}
    cfg["model"].update(pretrained=str(tmp_path / "hf"), embedding_mode="static",
                        embedding_dim=24)
    config = from_dict(cfg)
    lines = []
    clf, metrics = train_and_evaluate(config, load_datasets(config), output=tmp_path / "run",
                                      log=lines.append)
    assert any("input embeddings (its tokenizer)" in line for line in lines)
    assert clf.tokenizer.get_vocab() == tok.get_vocab()
    ids, lengths = clf.encode(["a gorgeous , witty film " * 10, ""])
    assert lengths.tolist() == [16, 0]  # our truncation, no padding from the folder
    weight = clf.model.embedding.weight.detach().numpy()
    np.testing.assert_array_equal(weight[1:], matrix[1:])
    np.testing.assert_array_equal(weight[0], 0.0)
    again = TextClassifier.from_pretrained(tmp_path / "run")
    # scores agree to float rounding (the reload may run another backend: 1e-7 apart, which
    # can flip the 6th decimal of a rounded score)
    np.testing.assert_allclose(again.predict_proba(["a witty film"])["sentiment"],
                               clf.predict_proba(["a witty film"])["sentiment"], atol=1e-6)
    # the folder's embeddings belong to its tokenizer
    cfg["tokenizer"] = {"kind": "word", "max_length": 16}
    config = from_dict(cfg)
    with pytest.raises(ConfigError, match="set tokenizer.kind: pretrained"):
        train_and_evaluate(config, load_datasets(config), write_folder=False, log=lambda line: None)


def test_installed_package_names_resolve_to_their_folder(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "fake_vectors_pkg"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model" / "tokenizer.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("fake_vectors_pkg", None)
    assert resolve_source("fake-vectors-pkg") == pkg / "model"
    with pytest.raises(ConfigError, match="neither a file, a folder nor an installed package"):
        resolve_source("no-such-vectors-anywhere")


class FakeDist:
    """An installed distribution as importlib.metadata shows it: a name and files to locate."""

    def __init__(self, name, paths):
        self.metadata = {"Name": name}
        self.files = [FakeFile(p) for p in paths]


class FakeFile:
    def __init__(self, path):
        self.path = path

    def __str__(self):
        return f"{self.path.parent.name}/{self.path.name}"

    def locate(self):
        return self.path


def test_split_zip_packages_unpack_once_into_the_cache(sst2_slice, tmp_path, monkeypatch):
    texts = [json.loads(line)["text"] for line in (sst2_slice / "train.jsonl").open()]
    tok, matrix = write_model_folder(tmp_path / "hf" / "tiny-model", texts[:500])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:  # stored, as the published parts are
        for file in (tmp_path / "hf" / "tiny-model").iterdir():
            zf.write(file, f"tiny-model/{file.name}")
    data = archive.getvalue()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    dists = []
    for i in range(3):
        part = tmp_path / "site" / f"tiny-model-pypi-part_00{i + 1}" / f"tiny-model.zip.00{i + 1}"
        part.parent.mkdir(parents=True)
        part.write_bytes(data[cut[i]:cut[i + 1]])
        dists.append(FakeDist(f"tiny-model-pypi-part-00{i + 1}", [part]))
    dists.append(FakeDist("unrelated", [tmp_path / "other.zip.001"]))
    monkeypatch.setattr(textcnn.sources.importlib.metadata, "distributions",
                        lambda: iter(dists[::-1]))
    monkeypatch.setenv("TEXTCNN_CACHE", str(tmp_path / "cache"))
    assert [p.name for p in split_zip_parts("tiny-model")] == [
        "tiny-model.zip.001", "tiny-model.zip.002", "tiny-model.zip.003"]
    folder = resolve_source("tiny-model")
    assert folder == tmp_path / "cache" / "tiny-model"
    assert sorted(p.name for p in folder.iterdir()) == ["embeddings.safetensors", "tokenizer.json"]
    got, report = pretrained_matrix("tiny-model", tok)
    np.testing.assert_array_equal(got[1:], matrix[1:])
    assert f"{tok.get_vocab_size():,} x 24 input embeddings" in report
    # a second use reads the cache (the parts may be gone)
    for part in (tmp_path / "site").rglob("*.zip.*"):
        part.unlink()
    assert resolve_source("tiny-model") == folder
    # a missing part is named
    monkeypatch.setattr(textcnn.sources.importlib.metadata, "distributions",
                        lambda: iter([dists[0], dists[2]]))
    with pytest.raises(ConfigError, match=r"part\(s\) 002 are not installed"):
        split_zip_parts("tiny-model")


def test_config_errors_name_the_key(sst2_slice, tmp_path):
    cfg = tiny_config(sst2_slice)
    cfg["model"]["embedding_mode"] = "static"
    with pytest.raises(ConfigError, match="'model.embedding_mode' 'static' needs pretrained"):
        from_dict(cfg)
    cfg = tiny_config(sst2_slice)
    cfg["tokenizer"]["kind"] = "pretrained"
    with pytest.raises(ConfigError, match="'tokenizer.kind' 'pretrained' takes the tokenizer"):
        from_dict(cfg)
    cfg = tiny_config(sst2_slice)
    cfg["model"]["embedding_mode"] = "dual"
    with pytest.raises(ConfigError, match="'model.embedding_mode' must be one of"):
        from_dict(cfg)
    vectors = tmp_path / "v.txt"
    write_text(vectors, {"film": [1, 2, 3]}, header=False)
    cfg = tiny_config(sst2_slice, epochs=1)
    cfg["model"]["pretrained"] = str(vectors)  # 3-d vectors, 32-d embedding
    config = from_dict(cfg)
    with pytest.raises(ConfigError, match="'model.embedding_dim' is 32 but the vectors .* are "
                                          "3-dimensional; set model.embedding_dim: 3"):
        train_and_evaluate(config, load_datasets(config), write_folder=False, log=lambda line: None)


def test_pretrained_matrix_reports_hits(tmp_path, trained):
    clf, _ = trained
    vectors = tmp_path / "v.vec"
    write_text(vectors, WORDS)
    matrix, report = pretrained_matrix(str(vectors), clf.tokenizer)
    vocab = clf.tokenizer.get_vocab()
    hits = sum(w in vocab for w in ("good", "film", "bad"))
    assert f": {hits} of {len(vocab) - 1:,} vocabulary entries found" in report
    np.testing.assert_allclose(matrix[vocab["film"]], WORDS["film"])


def test_pca_reduced_table_is_what_the_folder_keeps(sst2_slice, tmp_path):
    texts = [json.loads(line)["text"] for line in (sst2_slice / "train.jsonl").open()]
    write_model_folder(tmp_path / "hf", texts[:500])
    cfg = tiny_config(sst2_slice, epochs=1)
    cfg["tokenizer"] = {"kind": "pretrained", "max_length": 16}
    cfg["model"].update(pretrained=str(tmp_path / "hf"), embedding_mode="static",
                        embedding_dim=8, embedding_reduce="pca")
    config = from_dict(cfg)
    lines = []
    clf, _ = train_and_evaluate(config, load_datasets(config), output=tmp_path / "run",
                                log=lines.append)
    assert any("reduced to its 8 principal components" in line for line in lines)
    weight = clf.model.embedding.weight.detach().numpy()
    assert weight.shape[1] == 8
    np.testing.assert_array_equal(weight[0], 0.0)
    variance = weight[1:].var(axis=0)  # principal components: uncorrelated, widest first
    assert np.all(np.diff(variance) <= 1e-6)
    np.testing.assert_allclose(np.cov(weight[1:].T) - np.diag(np.diag(np.cov(weight[1:].T))),
                               0.0, atol=1e-4)
    again = TextClassifier.from_pretrained(tmp_path / "run")
    np.testing.assert_allclose(again.predict_proba(["a witty film"])["sentiment"],
                               clf.predict_proba(["a witty film"])["sentiment"], atol=1e-6)
    cfg["model"]["embedding_dim"] = 24  # the vectors' own size: nothing to reduce
    config = from_dict(cfg)
    with pytest.raises(ConfigError, match="'model.embedding_dim' is 24; model.embedding_reduce: "
                                          "pca needs 0 < embedding_dim < 24"):
        train_and_evaluate(config, load_datasets(config), write_folder=False, log=lambda line: None)
    cfg = tiny_config(sst2_slice)
    cfg["model"]["embedding_reduce"] = "pca"
    with pytest.raises(ConfigError, match="'model.embedding_reduce' 'pca' reduces pretrained"):
        from_dict(cfg)
