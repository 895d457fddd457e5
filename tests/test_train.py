import json

import numpy as np
import pytest
import torch

from conftest import tiny_config, train_full_and_cut
from textcnn.classifier import TextClassifier
from textcnn.config import from_dict
from textcnn.modality import load_datasets
from textcnn.runs import train_and_evaluate
from textcnn.training import train_batches


def test_tiny_sst2_run_beats_chance_and_writes_the_folder(trained):
    clf, out = trained
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.json",
            "history.jsonl"} <= names
    assert "checkpoint.safetensors" not in names
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["sentiment"]) == {"validation", "test"}
    assert metrics["sentiment"]["test"]["accuracy"] > 0.68  # chance is 0.50
    assert 0 < metrics["sentiment"]["test"]["macro_f1"] <= 1
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == list(range(1, len(history) + 1))
    assert {"seconds", "train_loss", "validation"} <= set(history[0])
    config = json.loads((out / "config.json").read_text())
    assert config["heads"] == {"sentiment": ["negative", "positive"]}
    assert config["textcnn_version"] and config["model"]["channels"] == 16


def test_plots_written_with_matplotlib(trained):
    pytest.importorskip("matplotlib")
    _, out = trained
    for name in ("curves.png", "confusion.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_round_trip_gives_identical_logits(trained):
    clf, out = trained
    loaded = TextClassifier.from_pretrained(out)
    texts = ["a gorgeous , witty film", "", "dull", "x " * 300]
    a = clf.predict_proba(texts)["sentiment"]
    b = loaded.predict_proba(texts)["sentiment"]
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert next(loaded.model.parameters()).device == torch.device("cpu")


def test_same_seed_same_metrics(sst2_slice):
    config = from_dict(tiny_config(sst2_slice, epochs=2))
    raws = load_datasets(config)
    quiet = lambda line: None  # noqa: E731
    runs = [train_and_evaluate(config, raws, log=quiet, write_folder=False) for _ in range(2)]
    assert runs[0][1] == runs[1][1]
    other = from_dict(tiny_config(sst2_slice, epochs=2, seed=1))
    assert train_and_evaluate(other, raws, log=quiet, write_folder=False)[1] != runs[0][1]


def test_resume_continues_an_interrupted_run(sst2_slice, tmp_path):
    config = from_dict(tiny_config(sst2_slice, epochs=3, patience=5))
    raws = load_datasets(config)
    full = train_full_and_cut(config, raws, tmp_path)
    assert (tmp_path / "cut" / "checkpoint.safetensors").exists()
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    _, resumed = train_and_evaluate(config, raws, tmp_path / "cut", resume=True,
                                    log=lambda line: None)
    assert resumed == full
    history = [json.loads(line) for line in (tmp_path / "cut" / "history.jsonl").read_text()
               .splitlines()]
    assert len(history) == 3
    # the run's clock goes on from the last saved epoch's: elapsed keeps rising across the resume
    elapsed = [row["elapsed_seconds"] for row in history]
    assert 0 < elapsed[0] < elapsed[1] < elapsed[2]
    saved = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert saved["seconds_to_best"] == elapsed[saved["best_epoch"] - 1] <= saved["seconds"]


def test_length_bucketing_keeps_every_row_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 1003)
    batches = train_batches(lengths, 50, 10, rng)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1003))
    # within a batch lengths are close: mean spread far below that of random batches
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 10
