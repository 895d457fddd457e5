"""Data-parallel training under torchrun (gloo on the CPU) and runs that survive kill -9 or NaN.

Two tasks, so every batch leaves one head without a gradient (DDP must allow it), dropout off,
2 epochs of 24 global batches of 20 (the last of each task short), a checkpoint every 5 steps.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import read_jsonl, write_jsonl
from textcnn import load_config, train
from textcnn.cli import main as cli_main
from textcnn.training import TrainingDiverged, read_checkpoint, unpack_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("train_driver.py")
STEPS_PER_EPOCH = 16 + 8  # ceil(310 / 20) + ceil(150 / 20)


@pytest.fixture(scope="module")
def tiny_config(data_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    rng = random.Random(1)
    for task, n_train in (("a", 310), ("b", 150)):
        for split, n in (("train", n_train), ("validation", 40), ("test", 40)):
            rows = read_jsonl(data_dir / "sst2" / f"{split}.jsonl")
            (root / task).mkdir(exist_ok=True)
            write_jsonl(root / task / f"{split}.jsonl", rng.sample(rows, n))
        (root / task / "dataset.json").write_text(
            (data_dir / "sst2" / "dataset.json").read_text())
    config = {
        "tasks": {t: {"dataset": str(root / t)} for t in ("a", "b")},
        "tokenizer": {"kind": "word", "max_length": 48},
        "model": {"embedding_dim": 16, "kernel_sizes": [3, 4], "channels": 8, "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 20, "lr": 0.002, "seed": 0, "patience": 5,
                  "threads": 1, "checkpoint_every": 5},
    }
    path = root / "tiny.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def run(args: list[str], nproc: int = 1) -> subprocess.CompletedProcess:
    """The driver in one process, or under torchrun in ``nproc``."""
    head = [sys.executable] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
        str(nproc)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([*head, str(DRIVER), *map(str, args)], env=env, timeout=600,
                          capture_output=True, text=True)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def checkpoint_position(folder: Path) -> tuple[int, int, int]:
    _, meta = read_checkpoint(folder / "checkpoint.safetensors", tensors=False)
    return meta["optimizer_step"], meta["epoch"], meta["batch_in_epoch"]


@pytest.fixture(scope="module")
def one_process(tiny_config, tmp_path_factory) -> dict[str, torch.Tensor]:
    clf = train(load_config(tiny_config), output=tmp_path_factory.mktemp("one") / "run",
                log=lambda line: None)
    return {k: v.clone() for k, v in clf.model.state_dict().items()}


@pytest.fixture(scope="module")
def two_processes(tiny_config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two") / "run"
    done = run([tiny_config, out], nproc=2)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_ddp_ranks_agree_and_match_one_process(one_process, two_processes):
    rank0 = weights(two_processes / "weights.rank0.safetensors")
    rank1 = weights(two_processes / "weights.rank1.safetensors")
    assert rank0.keys() == rank1.keys() == one_process.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
        torch.testing.assert_close(rank0[name], one_process[name], rtol=0, atol=1e-5)
    # rank 0 alone wrote the folder, and it holds rank 0's weights
    assert not (two_processes / "checkpoint.safetensors").exists()
    saved = weights(two_processes / "model.safetensors")
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)
    history = read_jsonl(two_processes / "history.jsonl")
    assert [row["epoch"] for row in history] == [1, 2]


def test_kill_9_mid_epoch_then_resume_one_process(tiny_config, one_process, tmp_path):
    out = tmp_path / "run"
    killed = run([tiny_config, out, "--kill-after", 7])
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert checkpoint_position(out) == (5, 0, 5)  # mid-epoch 1, two steps lost
    assert not (out / "config.json").exists()
    clf = train(load_config(tiny_config), output=out, resume=True, log=lambda line: None)
    for name, value in clf.model.state_dict().items():
        assert torch.equal(value, one_process[name]), name


def test_kill_9_mid_epoch_then_resume_two_processes(tiny_config, two_processes, tmp_path):
    out = tmp_path / "run"
    killed = run([tiny_config, out, "--kill-after", STEPS_PER_EPOCH + 9, "--kill-rank", 1],
                 nproc=2)
    assert killed.returncode != 0
    assert checkpoint_position(out) == (30, 1, 6)  # mid-epoch 2, three steps lost
    resumed = run([tiny_config, out, "--resume"], nproc=2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank in (0, 1):
        got = weights(out / f"weights.rank{rank}.safetensors")
        want = weights(two_processes / f"weights.rank{rank}.safetensors")
        assert all(torch.equal(got[k], want[k]) for k in want), rank


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
        tiny_config, tmp_path, capsys):
    from textcnn.models import TextCNN

    calls = [0]

    def poison(module, args, output):
        if isinstance(module, TextCNN) and module.training:
            calls[0] += 1
            if calls[0] == 8:  # the 8th training forward pass: optimizer step 8
                return {h: v * float("nan") for h, v in output.items()}
        return None

    out = tmp_path / "run"
    handle = torch.nn.modules.module.register_module_forward_hook(poison)
    try:
        code = cli_main(["train", str(tiny_config), "--output", str(out)])
    finally:
        handle.remove()
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error: training diverged: the loss is nan at optimizer step 8 (epoch 1, batch 8)" \
        in err and "(after step 5)" in err and str(out / "checkpoint.safetensors") in err
    tensors, meta = read_checkpoint(out / "checkpoint.safetensors")
    state = unpack_checkpoint(tensors, meta)
    assert (state.optimizer_step, state.batch_in_epoch) == (5, 5)
    assert all(torch.isfinite(v).all() for v in state.model.values())
    clf = train(load_config(tiny_config), output=out, resume=True, log=lambda line: None)
    assert all(torch.isfinite(v).all() for v in clf.model.state_dict().values())
    assert isinstance(TrainingDiverged("x"), Exception)


@pytest.mark.cuda
def test_nccl_on_two_gpus_matches_one_gpu(tiny_config, tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    config = json.loads(tiny_config.read_text())
    config["train"]["device"] = "cuda"
    path = tmp_path / "cuda.yaml"
    path.write_text(json.dumps(config))
    one = train(load_config(path), output=tmp_path / "one", log=lambda line: None)
    done = run([path, tmp_path / "two"], nproc=2)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = weights(tmp_path / "two" / "weights.rank0.safetensors")
    rank1 = weights(tmp_path / "two" / "weights.rank1.safetensors")
    for name, value in one.model.state_dict().items():
        assert torch.equal(rank0[name], rank1[name]), name
        torch.testing.assert_close(rank0[name], value.cpu(), rtol=0, atol=1e-4)
