"""Shared fixtures: the benchmark data folder and small, randomly sampled slices of it."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("TEXTCNN_DATA_DIR", ROOT.parent / "shared" / "data"))
    if not (path / "sst2" / "dataset.json").is_file():
        pytest.fail(f"benchmark data not found at {path}: set TEXTCNN_DATA_DIR")
    return path


def _checkout_runs() -> set[str]:
    try:
        return set(os.listdir(ROOT / "runs"))
    except FileNotFoundError:
        return set()


@pytest.fixture(autouse=True)
def _no_run_folders_in_the_checkout():
    """Fail a test that leaves anything in the checkout's runs/ (a run without --output writes
    to runs/<name> in the working directory: such tests chdir to tmp_path)."""
    before = _checkout_runs()
    yield
    grown = sorted(_checkout_runs() - before)
    if grown:
        pytest.fail(f"the test left {', '.join(grown)} in {ROOT / 'runs'}: write to tmp_path")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="session")
def sst2_slice(data_dir, tmp_path_factory) -> Path:
    """A random (never "first N") sample of SST-2: 4000 train / 400 validation / 600 test."""
    out = tmp_path_factory.mktemp("sst2-slice")
    rng = random.Random(0)
    for split, n in (("train", 4000), ("validation", 400), ("test", 600)):
        rows = read_jsonl(data_dir / "sst2" / f"{split}.jsonl")
        write_jsonl(out / f"{split}.jsonl", rng.sample(rows, n))
    meta = json.loads((data_dir / "sst2" / "dataset.json").read_text())
    (out / "dataset.json").write_text(json.dumps(meta))
    return out


@pytest.fixture(scope="session")
def small_slice(sst2_slice, tmp_path_factory):
    """600 / 100 / 100 rows of the SST-2 slice: a few seconds per run."""
    out = tmp_path_factory.mktemp("sst2-small")
    rng = random.Random(1)
    for split, n in (("train", 600), ("validation", 100), ("test", 100)):
        rows = read_jsonl(sst2_slice / f"{split}.jsonl")
        write_jsonl(out / f"{split}.jsonl", rng.sample(rows, n))
    (out / "dataset.json").write_text((sst2_slice / "dataset.json").read_text())
    return out


def tiny_config(dataset: str | Path, **train) -> dict:
    """A small, fast TextCNN config as plain data."""
    return {
        "tasks": {"sentiment": {"dataset": str(dataset)}},
        "tokenizer": {"kind": "word", "max_length": 64},
        "model": {"embedding_dim": 32, "kernel_sizes": [3, 4, 5], "channels": 16, "dropout": 0.3},
        "train": {"epochs": 4, "batch_size": 50, "optimizer": "adamw", "lr": 0.01,
                  "seed": 0, "patience": 3, "threads": 1, **train},
    }


@pytest.fixture(scope="session")
def trained(sst2_slice, tmp_path_factory):
    """(classifier, model folder) of one tiny SST-2 run shared by the tests."""
    from textcnn.config import from_dict
    from textcnn.runs import train

    out = tmp_path_factory.mktemp("run") / "model"
    clf = train(from_dict(tiny_config(sst2_slice)), output=out, log=lambda line: None)
    return clf, out


@pytest.fixture(scope="session")
def trec_slice(data_dir, tmp_path_factory) -> Path:
    """A random sample of TREC (train 1500, test 300): a small second task for multi-task tests."""
    out = tmp_path_factory.mktemp("trec-slice")
    rng = random.Random(0)
    for split, n in (("train", 1500), ("test", 300)):
        rows = read_jsonl(data_dir / "trec" / f"{split}.jsonl")
        write_jsonl(out / f"{split}.jsonl", rng.sample(rows, n))
    (out / "dataset.json").write_text((data_dir / "trec" / "dataset.json").read_text())
    return out


def train_full_and_cut(config, raws, tmp_path):
    """Train ``config`` uninterrupted into ``tmp_path/full`` and again into ``tmp_path/cut``,
    killed (KeyboardInterrupt) when epoch 2 ends; returns the uninterrupted run's metrics."""
    from textcnn.runs import train_and_evaluate

    _, full = train_and_evaluate(config, raws, tmp_path / "full", log=lambda line: None)

    def die_at_epoch_2(line):
        if line.startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(config, raws, tmp_path / "cut", log=die_at_epoch_2)
    return full


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped, with the reason, on a machine without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run scripts/device_check.sh on one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
