"""Devices and precision (train.device, --device, bf16 / fp16 autocast), the batch split across
ranks, and exact mid-epoch resume; tests marked ``cuda`` skip, saying why, without a GPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_schedules import tiny_trainer

import textcnn
from conftest import tiny_config
from textcnn.cli import main as cli_main
from textcnn.cli import without_nproc
from textcnn.config import from_dict
from textcnn.devices import autocast, resolve_device, to_device
from textcnn.errors import ConfigError
from textcnn.training import World, epoch_plan, steps_per_epoch
from textcnn.training.distributed import torchrun_command


def test_device_names_resolve_or_fail_naming_the_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="'cuda:99': this machine has"):
        resolve_device("cuda:99")
    with pytest.raises(ConfigError, match="expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")
    for key, bad in (("device", "gpu0"), ("precision", "fp8"), ("checkpoint_every", -1)):
        with pytest.raises(ConfigError, match=f"train.{key}"):
            from_dict({"tasks": {"s": {"dataset": "x"}}, "train": {key: bad}})


def test_bf16_autocast_runs_the_forward_in_bf16_and_keeps_fp32_weights():
    lin = torch.nn.Linear(4, 2)
    with autocast(torch.device("cpu"), "bf16"):
        out = lin(torch.ones(3, 4))
    assert out.dtype == torch.bfloat16 and lin.weight.dtype == torch.float32
    with autocast(torch.device("cpu"), "fp32"):
        assert lin(torch.ones(3, 4)).dtype == torch.float32
    (ids,) = to_device((torch.arange(3),), torch.device("cpu"))
    assert ids.device.type == "cpu"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_the_folder_loads_on_the_cpu(sst2_slice, tmp_path, precision):
    config = from_dict(tiny_config(sst2_slice, epochs=1, precision=precision))
    clf = textcnn.train(config, output=tmp_path / "run", log=lambda line: None)
    assert all(v.dtype == torch.float32 for v in clf.model.state_dict().values())
    history = [json.loads(r) for r in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert np.isfinite(history[0]["train_loss"]) and history[0]["validation_accuracy"] > 0.55
    loaded = textcnn.load(tmp_path / "run", backend="torch", device="cpu")
    texts = ["a gorgeous, witty film", "dull and lifeless"]
    np.testing.assert_allclose(loaded.predict_proba(texts)["sentiment"],
                               clf.predict_proba(texts)["sentiment"], atol=1e-6)


def test_fp16_turns_the_gradient_scaler_on_and_resume_restores_it(tmp_path):
    trainer = tiny_trainer(precision="fp16", epochs=1)
    assert trainer.scaler.is_enabled()
    trainer.checkpoint_dir = tmp_path
    trainer.fit()
    again = tiny_trainer(precision="fp16", epochs=1)
    again.load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert again.scaler.get_scale() == trainer.scaler.get_scale()
    assert not tiny_trainer().scaler.is_enabled()


def test_every_rank_takes_every_step_and_the_rows_are_split_once():
    for n in range(1, 9):
        idx = np.arange(100, 100 + n)
        for size in (1, 2, 3):
            shards = [World(rank=r, size=size).shard(idx) for r in range(size)]
            real = [rows for rows, weight in shards if weight]
            assert sorted(np.concatenate(real).tolist()) == idx.tolist()
            # DDP averages over ranks: sum over ranks of weight * rows / size is one mean
            assert sum(w * len(rows) for rows, w in shards) / size == pytest.approx(1.0)
            assert all(len(rows) >= 1 for rows, _ in shards)  # a rank without rows runs one


def test_the_multi_task_plan_is_one_plan_for_every_rank():
    tc = from_dict({"tasks": {"a": {"dataset": "x"}, "b": {"dataset": "y"}},
                    "train": {"batch_size": 4, "sampling": "temperature"}}).train
    from textcnn.training import Encoded

    data = {t: {"train": Encoded(np.zeros((n, 2), np.int32), np.ones(n, np.int64))}
            for t, n in (("a", 30), ("b", 9))}
    plans = [epoch_plan(data, tc, np.random.default_rng(7)) for _rank in range(2)]
    assert [(t, i.tolist()) for t, i in plans[0]] == [(t, i.tolist()) for t, i in plans[1]]
    assert len(plans[0]) == steps_per_epoch(data, tc)


def test_mid_epoch_checkpoint_resumes_to_the_same_weights(tmp_path):
    full = tiny_trainer(epochs=2, checkpoint_every=3)
    full.fit()
    cut = tiny_trainer(epochs=2, checkpoint_every=3)
    cut.checkpoint_dir = tmp_path

    def die(optimizer, args, kwargs):
        if cut.step == 3:  # in step 4, after the checkpoint of step 3 (4 batches an epoch)
            raise KeyboardInterrupt

    handle = cut.optimizer.register_step_post_hook(die)
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    handle.remove()
    resumed = tiny_trainer(epochs=2, checkpoint_every=3)
    resumed.checkpoint_dir = tmp_path
    resumed.load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert (resumed.step, resumed.epoch, resumed.batch_in_epoch) == (3, 0, 3)
    resumed.fit()
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]


def test_nproc_launches_torchrun_with_the_same_command():
    assert without_nproc(["train", "c.yaml", "--nproc", "2", "--device", "cpu"]) == \
        ["train", "c.yaml", "--device", "cpu"]
    assert without_nproc(["train", "--nproc=4", "c.yaml"]) == ["train", "c.yaml"]
    cmd = torchrun_command(2, ["train", "c.yaml"])
    assert cmd[1:6] == ["-m", "textcnn.training.launcher", "--standalone", "--nproc-per-node",
                        "2"]
    assert cmd[6:] == ["-m", "textcnn", "train", "c.yaml"]


def test_predict_device_flag(trained, capsys):
    model_dir = trained[1]
    assert cli_main(["predict", str(model_dir), "fine", "--device", "cpu"]) == 0
    assert "sentiment" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert cli_main(["predict", str(model_dir), "fine", "--device", "cuda"]) == 2
        assert "CUDA device" in capsys.readouterr().err


# -- on a GPU (scripts/device_check.sh) ------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_training_loads_on_the_cpu(sst2_slice, tmp_path, precision):
    config = from_dict(tiny_config(sst2_slice, epochs=1, precision=precision, device="cuda"))
    clf = textcnn.train(config, output=tmp_path / "run", log=lambda line: None)
    assert next(clf.model.parameters()).device.type == "cuda"
    texts = ["a gorgeous, witty film", "dull and lifeless"]
    on_cpu = textcnn.load(tmp_path / "run", backend="torch", device="cpu")
    on_gpu = textcnn.load(tmp_path / "run", device="cuda")
    assert on_gpu.backend == "torch"
    np.testing.assert_allclose(on_cpu.predict_proba(texts)["sentiment"],
                               on_gpu.predict_proba(texts)["sentiment"], atol=1e-4)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["sentiment"]["test"]["accuracy"] > 0.55


@pytest.mark.cuda
def test_cuda_batches_are_pinned_and_moved_once():
    ids = torch.zeros(4, 5, dtype=torch.int64)
    (moved,) = to_device((ids,), torch.device("cuda"))
    assert moved.device.type == "cuda" and not ids.is_pinned()
    trainer = tiny_trainer(device="cuda")
    trainer.fit()
    assert next(trainer.model.parameters()).device.type == "cuda"


@pytest.mark.cuda
def test_cuda_resume_mid_epoch_is_exact(tmp_path):
    full = tiny_trainer(device="cuda", epochs=2, checkpoint_every=3)
    full.fit()
    cut = tiny_trainer(device="cuda", epochs=2, checkpoint_every=3)
    cut.checkpoint_dir = tmp_path
    cut.train_epoch()  # 4 steps, checkpoint after step 3
    resumed = tiny_trainer(device="cuda", epochs=2, checkpoint_every=3)
    resumed.load_checkpoint(tmp_path / "checkpoint.safetensors")
    resumed.fit()
    for name, value in full.model.state_dict().items():
        torch.testing.assert_close(value, resumed.model.state_dict()[name])


def test_python_dash_m_textcnn_is_the_command(monkeypatch, capsys):
    import runpy

    monkeypatch.setattr("sys.argv", ["textcnn", "--version"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("textcnn", run_name="__main__")
    assert done.value.code == 0 and capsys.readouterr().out.startswith("textcnn ")
