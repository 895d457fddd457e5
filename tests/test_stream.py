"""Streamed corpora: training from shards read as a stream, the bounded shuffle buffer, and
predict / evaluate in chunks giving what the in-memory paths give."""

from __future__ import annotations

import collections
import itertools
import json
import random

import numpy as np
import pytest
import torch

from conftest import read_jsonl, tiny_config, write_jsonl
from textcnn.cli import main
from textcnn.config import from_dict
from textcnn.data.stream import StreamSource, bucketed, shuffled
from textcnn.errors import ConfigError, DataError

WORDS = ["film", "plot", "actor", "scene", "story", "music", "the", "a", "was", "it"]


def toy_rows(n: int, seed: int) -> list[dict]:
    """Sentences whose label is which of two cue words they hold, among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randrange(2)
        words = rng.choices(WORDS, k=rng.randrange(3, 12))
        words.insert(rng.randrange(len(words) + 1), ("dreadful", "wonderful")[label])
        rows.append({"text": " ".join(words), "label": ("neg", "pos")[label]})
    return rows


@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory):
    """Train shards sorted by label (a stream read in order would be one class, then the other),
    and validation / test files."""
    out = tmp_path_factory.mktemp("toy-stream")
    rows = sorted(toy_rows(2000, 0), key=lambda r: r["label"])
    write_jsonl(out / "train-0.jsonl", rows[:1000])
    write_jsonl(out / "train-1.jsonl", rows[1000:])
    write_jsonl(out / "validation.jsonl", toy_rows(200, 1))
    write_jsonl(out / "test.jsonl", toy_rows(300, 2))
    return out


def stream_config(dataset, **train) -> dict:
    config = tiny_config(dataset, **{"epochs": 2, "shuffle_buffer": 500, **train})
    config["tasks"]["sentiment"]["stream"] = True
    config["tokenizer"]["sample"] = 300
    return config


def test_streamed_training_gives_a_working_model(toy_folder, tmp_path):
    from textcnn.runs import train

    lines = []
    clf = train(from_dict(stream_config(toy_folder, loader_workers=1)), output=tmp_path / "m",
                log=lines.append)
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())["sentiment"]
    assert metrics["test"]["accuracy"] >= 0.95, lines
    assert clf.predict(["wonderful film", "dreadful film"]) and sorted(clf.heads["sentiment"]) \
        == ["neg", "pos"]
    assert [r["label"] for r in (row["sentiment"][0] for row in
                                 clf.predict(["a wonderful story", "a dreadful story"]))] \
        == ["pos", "neg"]
    assert "2000 train / 200 validation / 300 test" in lines[0]
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["tasks"]["sentiment"]["stream"] is True


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_every_row_is_read_once_per_pass(tmp_path, parts, fmt):
    import pandas as pd

    rows = toy_rows(50, 3)
    files = []
    for i, chunk in enumerate((rows[:20], rows[20:])):  # 2 shards: fewer than 3 parts
        path = tmp_path / f"train-{i}.{fmt}"
        frame = pd.DataFrame(chunk)
        if fmt == "jsonl":
            write_jsonl(path, chunk)
        elif fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path)
        files.append(str(path))
    source = StreamSource(files)
    read = [(text, label) for part in range(parts) for text, label, _ in source.rows(part, parts)]
    assert collections.Counter(read) == collections.Counter((r["text"], r["label"]) for r in rows)
    assert source.count() == 50


def test_the_shuffle_buffer_is_bounded():
    buffer, batch_size, chunk_batches = 64, 4, 5
    pulled = [0]

    def endless():  # a stream with no end: only a bounded pipeline yields from it
        for i in itertools.count():
            pulled[0] += 1
            yield np.zeros(i % 9, np.int32), 0

    rng = np.random.default_rng(0)
    emitted = 0
    for batch in itertools.islice(bucketed(shuffled(endless(), buffer, rng), batch_size,
                                           chunk_batches, rng), 200):
        emitted += len(batch)
        # rows read but not yet out: at most the buffer and one chunk being bucketed
        assert pulled[0] - emitted <= buffer + batch_size * chunk_batches
    assert emitted == 800 and pulled[0] <= 800 + buffer + batch_size * chunk_batches


def test_shuffled_is_a_permutation_that_moves_rows_only_within_the_buffer():
    rng = np.random.default_rng(1)
    out = list(shuffled(range(1000), 50, rng))
    assert sorted(out) == list(range(1000)) and out != list(range(1000))
    assert all(pos >= row - 50 for pos, row in enumerate(out))  # row i leaves after i - 50 out


def _stream_trainer(toy_folder, **train):
    from textcnn.modality import modality_for
    from textcnn.models import build_model
    from textcnn.runs import load_datasets
    from textcnn.training import Trainer

    config = from_dict(stream_config(toy_folder, **train))
    modality = modality_for(config)
    data = modality.prepare(config, load_datasets(config))
    torch.manual_seed(0)
    model = build_model(config.model, data.input_size, {"sentiment": 2})
    assert not hasattr(data, "trainer_class")  # a streamed split is a split: one trainer
    return Trainer(config, model, data.splits, log=lambda line: None,
                   extra_state=data.checkpoint_state)


def _position(trainer):
    return trainer.data["sentiment"]["train"].position


def test_steps_per_epoch_and_resume_mid_pass(toy_folder, tmp_path):
    # 2000 rows / 50 = 40 batches a pass; epochs of 15 steps end mid-pass
    settings = {"steps_per_epoch": 15, "epochs": 4, "patience": 10, "loader_workers": 0}
    full = _stream_trainer(toy_folder, **settings)
    full.fit()
    assert full.step == 60 and _position(full) == [1, 20]
    cut = _stream_trainer(toy_folder, **settings)
    cut.checkpoint_dir = tmp_path
    cut._run_epoch()
    cut._run_epoch()  # 30 steps: the checkpoint is 10 batches before a pass ends
    path = cut.save_checkpoint()
    resumed = _stream_trainer(toy_folder, **settings)
    resumed.load_checkpoint(path)
    assert _position(resumed) == [0, 30]
    resumed.fit()
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


@pytest.mark.parametrize("backend", ["torch", "folded"])
def test_predict_file_streams_the_same_output_as_in_memory(trained, tmp_path, capsys,
                                                            monkeypatch, backend):
    import textcnn
    import textcnn.chunked as scoring

    clf = textcnn.load(trained[1], backend=backend)
    texts = [r["text"] for r in toy_rows(300, 4)] + ["", "x", "long " * 400]
    path = tmp_path / "texts.txt"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    monkeypatch.setattr(scoring, "CHUNK", 37)  # many chunks, a short last one
    assert main(["predict", str(trained[1]), "--file", str(path), "--top-k", "2", "--backend",
                 backend]) == 0
    out = capsys.readouterr().out.splitlines()
    cut = clf.prepare(texts).truncated  # the last text is over max_length tokens
    want = [{"id": i, "text": t, "predictions": row, **({"truncated": True} if c else {})}
            for i, (t, row, c) in enumerate(zip(texts, clf.predict(texts, top_k=2), cut))]
    assert cut.sum() == 1
    assert [json.loads(line) for line in out] == want


def test_evaluate_streams_the_test_file_like_in_memory(trained, sst2_slice, monkeypatch):
    import textcnn.chunked as scoring
    from textcnn.runs import evaluate_folder

    clf, folder = trained
    rows = read_jsonl(sst2_slice / "test.jsonl")
    expected = clf.evaluate([r["text"] for r in rows], [r["label"] for r in rows])
    calls = []
    real = scoring.evaluate_file
    monkeypatch.setattr(scoring, "evaluate_file", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(scoring, "CHUNK", 64)
    got = evaluate_folder(folder, str(sst2_slice), "test")["sentiment"]["test"]
    assert calls and got["accuracy"] == expected["accuracy"]
    assert got["macro_f1"] == pytest.approx(expected["macro_f1"], abs=2e-6)
    assert got["loss"] == pytest.approx(expected["loss"], abs=2e-6)


def test_a_bad_label_in_the_stream_fails_naming_its_line(toy_folder, tmp_path, capsys):
    import yaml

    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("validation.jsonl", "test.jsonl"):
        (folder / name).write_text((toy_folder / name).read_text())
    rows = toy_rows(400, 5)
    rows[350]["label"] = "maybe"  # past the tokenizer sample: met while training
    write_jsonl(folder / "train.jsonl", rows)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(stream_config(folder, loader_workers=1)))
    code = main(["train", str(config), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == (f"error: {folder / 'train.jsonl'}:351: label \"maybe\" is "
                                     "outside the label names (0=neg, 1=pos)")


@pytest.mark.parametrize("change, key", [
    (lambda c: c["tasks"]["sentiment"].update(stream=False, validation="v.jsonl"),
     "tasks.sentiment.validation"),
    (lambda c: c["tasks"].update(other={"dataset": "sst2"}), "tasks.sentiment.stream"),
    (lambda c: c["tasks"]["sentiment"].update(stream=False) or c["train"].update(
        steps_per_epoch=5), "train.steps_per_epoch"),
])
def test_stream_keys_are_checked(change, key):
    config = stream_config("somewhere")
    change(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from_dict(config)


def test_a_streamed_task_needs_a_validation_split(tmp_path):
    from textcnn.runs import load_datasets

    write_jsonl(tmp_path / "train.jsonl", toy_rows(20, 6))
    config = from_dict(stream_config(tmp_path / "train.jsonl"))
    with pytest.raises(DataError, match="needs a validation split"):
        load_datasets(config)


def test_a_glob_of_shards_with_named_files_and_labels(toy_folder):
    from textcnn.runs import load_datasets

    config = stream_config(str(toy_folder / "train-*.jsonl"))
    config["tasks"]["sentiment"].update(validation=str(toy_folder / "validation.jsonl"),
                                        labels=["pos", "neg"])
    (dataset,) = load_datasets(from_dict(config)).values()
    assert [p.rsplit("/", 1)[1] for p in dataset.train.files] == ["train-0.jsonl",
                                                                   "train-1.jsonl"]
    assert dataset.label_names == ["pos", "neg"] and "test" not in dataset.splits
    validation = read_jsonl(toy_folder / "validation.jsonl")
    assert dataset.splits["validation"].labels.tolist() == [
        ["pos", "neg"].index(r["label"]) for r in validation]
