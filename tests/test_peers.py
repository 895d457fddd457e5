"""Smoke tests for ``textcnn.contrib.studies.peers`` on a tiny synthetic dataset."""

import json
import random
import sys
from pathlib import Path

import pytest

from textcnn.contrib.studies import peers

VOCAB = (["good", "great", "lovely", "superb", "fine"],
         ["bad", "awful", "poor", "dreadful", "ugly"])


def _write_split(path: Path, n: int, rng: random.Random) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            label = i % 2
            words = rng.choices(VOCAB[label], k=4) + rng.choices(["the", "a", "film", "plot"], k=3)
            rng.shuffle(words)
            f.write(json.dumps({"text": " ".join(words), "label": label}) + "\n")


@pytest.fixture()
def data_dir(tmp_path: Path) -> str:
    folder = tmp_path / "toy"
    folder.mkdir()
    meta = {"name": "toy", "label_names": ["pos", "neg"], "splits": {"train": 80, "test": 40},
            "cv_folds": None}
    (folder / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    rng = random.Random(0)
    _write_split(folder / "train.jsonl", 80, rng)
    _write_split(folder / "test.jsonl", 40, rng)
    return str(tmp_path)


def test_tfidf_lr_separates_toy_data(data_dir):
    assert peers.protocol(data_dir, "toy") == "test"
    texts, labels, folds = peers.load_rows(data_dir, "toy", "train")
    assert len(texts) == len(labels) == 80 and folds is None
    result = peers.run_peer("tfidf_lr", data_dir, "toy", threads=1)
    assert result["protocol"] == "test" and result["runs"] == 1
    assert result["accuracy"]["mean"] > 0.9
    assert result["accuracy"]["std"] == 0.0


def test_load_rows_missing_dataset(data_dir):
    with pytest.raises(FileNotFoundError, match="nope"):
        peers.load_rows(data_dir, "nope", "train")
    with pytest.raises(FileNotFoundError, match="validation"):
        peers.load_rows(data_dir, "toy", "validation")


def test_fasttext_missing_names_the_bench_extra(data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "fasttext", None)  # import fasttext raises ImportError
    assert not peers.fasttext_available()
    with pytest.raises(ImportError, match=r"pip install 'textcnn\[bench\]'"):
        peers.run_peer("fasttext", data_dir, "toy", threads=1)


def test_fasttext_runs_once_per_seed(data_dir):
    pytest.importorskip("fasttext")
    result = peers.run_peer("fasttext", data_dir, "toy", threads=1, seeds=(0, 1))
    assert result["runs"] == 2 and result["accuracy"]["mean"] > 0.9
    assert peers.format_mean_std({"mean": 0.8123, "std": 0.004}) == "81.2 ± 0.4"


@pytest.mark.parametrize("peer", ["spacy_bow", "spacy_ensemble"])
def test_spacy_textcat_peers(data_dir, peer):
    pytest.importorskip("spacy")  # the bench extra
    result = peers.run_peer(peer, data_dir, "toy", threads=1, seeds=(0,))
    assert result["runs"] == 1 and result["accuracy"]["mean"] > 0.9
    assert result["sentences_per_second"]["mean"] > 0


def test_every_peer_reports_its_prediction_throughput(data_dir):
    result = peers.run_peer("tfidf_svc", data_dir, "toy", threads=1)
    assert result["sentences_per_second"]["mean"] > 0
    assert "| sentences/s |" in peers.markdown_table([result])
