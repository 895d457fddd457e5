"""train.schedule / train.warmup, train.loss, train.label_smoothing and train.ema."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from conftest import tiny_config, train_full_and_cut
from textcnn.config import from_dict
from textcnn.errors import ConfigError
from textcnn.metrics import classification_metrics, head_loss
from textcnn.modality import load_datasets
from textcnn.runs import check_saved_config, train_and_evaluate
from textcnn.training import Encoded, Trainer, epoch_plan, lr_factor, steps_per_epoch
from textcnn.training.callbacks import Callback, MovingAverage

# -- the lr schedule as a pure function of the step ------------------------------------------


def test_constant_without_warmup_is_always_one():
    assert {lr_factor(s, 100) for s in range(100)} == {1.0}


def test_warmup_ramps_linearly_to_the_peak():
    # 100 steps, 10 % warm-up: steps 0..9 ramp, step 10 is the peak
    f = [lr_factor(s, 100, "constant", 0.1) for s in range(100)]
    assert f[0] == pytest.approx(1 / 11) and f[4] == pytest.approx(5 / 11)
    assert f[10] == 1.0 and set(f[10:]) == {1.0}
    assert all(a < b for a, b in zip(f[:11], f[1:11]))


def test_cosine_decays_from_the_end_of_warmup_toward_zero():
    f = [lr_factor(s, 100, "cosine", 0.2) for s in range(100)]
    assert f[0] == pytest.approx(1 / 21) and f[20] == 1.0
    # half way through the decay (step 20 + 40) the factor is 1/2
    assert f[60] == pytest.approx(0.5)
    assert 0 < f[99] < 1e-3
    assert all(a > b for a, b in zip(f[20:], f[21:]))
    # no warm-up: full lr at the first step
    assert lr_factor(0, 100, "cosine") == 1.0
    assert lr_factor(99, 100, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.99)))


def test_onecycle_is_torchs_one_cycle_peaking_at_the_end_of_warmup():
    total, warmup, lr = 50, 0.3, 0.01
    w = round(warmup * total)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=total, pct_start=(w + 1) / total, anneal_strategy="cos",
        div_factor=25.0, final_div_factor=1e4, cycle_momentum=False)
    expected = []
    for _ in range(total):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [lr * lr_factor(s, total, "onecycle", warmup) for s in range(total)]
    np.testing.assert_allclose(ours, expected, rtol=1e-9)
    assert ours[0] == pytest.approx(lr / 25) and ours[w] == pytest.approx(lr)
    assert ours[-1] == pytest.approx(lr / 25e4)


def test_degenerate_step_counts_stay_finite():
    for schedule in ("constant", "cosine", "onecycle"):
        for total in (1, 2):
            for warmup in (0.0, 0.5, 0.99):
                f = [lr_factor(s, total, schedule, warmup) for s in range(total)]
                assert all(0 < v <= 1 for v in f), (schedule, total, warmup, f)


# -- a tiny hand-checkable model on synthetic data ---------------------------------------------


class Tiny(nn.Module):
    """Logits from a linear map of the one-hot first token; a float and an int buffer."""

    def __init__(self, vocab: int = 6, classes: int = 2):
        super().__init__()
        self.vocab = vocab
        self.lin = nn.Linear(vocab, classes)
        self.register_buffer("running", torch.zeros(classes))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, ids, lengths):
        logits = self.lin(nn.functional.one_hot(ids[:, 0], self.vocab).float())
        if self.training:
            with torch.no_grad():
                self.running.mul_(0.5).add_(logits.mean(0), alpha=0.5)
                self.calls += 1
        return {"t": logits}


def tiny_data(n_train: int = 40, n_val: int = 20, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def split(n):
        ids = rng.integers(1, 6, (n, 3)).astype(np.int32)
        return Encoded(ids, np.full(n, 3, dtype=np.int64), (ids[:, 0] % 2).astype(np.int64))

    return {"t": {"train": split(n_train), "validation": split(n_val)}}


def tiny_trainer(data=None, **train) -> Trainer:
    cfg = from_dict({"tasks": {"t": {"dataset": "x"}},
                     "train": {"epochs": 2, "batch_size": 10, "lr": 0.1, "max_norm": 0,
                               "threads": 1, "optimizer": "adam", **train}})
    torch.manual_seed(0)
    return Trainer(cfg, Tiny(), data or tiny_data(), log=lambda line: None)


def record_steps(trainer: Trainer) -> tuple[list, list]:
    """(lr used, raw weights after) for every optimizer step."""
    lrs, weights = [], []

    def hook(opt, args, kwargs):
        lrs.append(opt.param_groups[0]["lr"])
        weights.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    trainer.optimizer.register_step_post_hook(hook)
    return lrs, weights


def test_steps_per_epoch_matches_the_plan():
    tc = from_dict({"tasks": {"t": {"dataset": "x"}}, "train": {"batch_size": 7,
                                                             "bucket_chunks": 3}}).train
    rng = np.random.default_rng(0)
    for sizes in ([1], [7], [8], [50], [21, 22], [5, 100, 33]):
        data = {f"t{i}": {"train": Encoded(np.zeros((n, 2), np.int32), np.ones(n, np.int64))}
                for i, n in enumerate(sizes)}
        for sampling in ("proportional", "temperature"):
            tc.sampling = sampling
            assert steps_per_epoch(data, tc) == len(epoch_plan(data, tc, rng)), (sizes, sampling)


def test_the_trainer_follows_the_schedule_by_global_step():
    trainer = tiny_trainer(epochs=3, schedule="cosine", warmup=0.25)
    assert trainer.total_steps == 12  # 3 epochs x 4 batches of 10
    lrs, _ = record_steps(trainer)
    trainer.fit()
    assert trainer.step == 12
    np.testing.assert_allclose(lrs, [0.1 * lr_factor(s, 12, "cosine", 0.25) for s in range(12)])
    assert lrs[0] == pytest.approx(0.1 / 4) and lrs[3] == pytest.approx(0.1)


def test_default_config_leaves_the_lr_alone_and_keeps_no_average():
    trainer = tiny_trainer()
    lrs, _ = record_steps(trainer)
    trainer.fit()
    assert lrs == [0.1] * 8 and trainer.ema_model is None
    assert trainer.config.train.schedule == "constant"
    assert (trainer.config.train.warmup, trainer.config.train.label_smoothing,
            trainer.config.train.ema) == (0.0, 0.0, 0.0)


# -- label smoothing ---------------------------------------------------------------------------


def test_label_smoothing_changes_the_training_loss_only():
    data = tiny_data(n_train=10)  # one batch: the epoch's loss is that batch's loss
    losses, vals = {}, {}
    for ls in (0.0, 0.3):
        trainer = tiny_trainer(data, label_smoothing=ls)
        vals[ls] = trainer.validate()  # same initial weights: validation is not smoothed
        split = data["t"]["train"]
        with torch.no_grad():
            logits = trainer.model(*split.batch(np.arange(10)))["t"]
        y = torch.from_numpy(split.labels)
        expected = nn.functional.cross_entropy(logits, y, label_smoothing=ls).item()
        losses[ls] = trainer.train_epoch()
        assert losses[ls] == pytest.approx(expected, rel=1e-6)
    assert losses[0.3] != pytest.approx(losses[0.0], rel=1e-3)
    assert vals[0.0] == vals[0.3]
    val = data["t"]["validation"]
    with torch.no_grad():
        raw = tiny_trainer(data).model.eval()(*val.batch(np.arange(len(val))))["t"].numpy()
    assert vals[0.3]["t"] == classification_metrics(val.labels, raw)


def test_squared_hinge_is_one_vs_rest_linearsvc_loss():
    logits = torch.tensor([[2.0, -0.5, 0.3], [0.0, 0.0, 0.0]])
    rows = [head_loss(logits[i:i + 1], torch.tensor([y]), kind="squared_hinge").item()
            for i, y in enumerate([0, 2])]
    # row 0: the true class is past its margin, class 1 inside it by 0.5, class 2 by 1.3
    # row 1: every logit is 1 from its margin
    assert rows == pytest.approx([0.25 + 1.69, 3.0])
    assert head_loss(logits, torch.tensor([0, 2]), reduction="sum",
                     kind="squared_hinge").item() == pytest.approx(0.25 + 1.69 + 3.0)
    # multi-hot rows: each labelled class has sign +1
    multi = head_loss(logits[1:], torch.tensor([[1.0, 0.0, 1.0]]), kind="squared_hinge")
    assert multi.item() == pytest.approx(3.0)
    # rows on the right side of every margin give no gradient (cross-entropy still does)
    far = torch.tensor([[3.0, -2.0, -1.5]], requires_grad=True)
    head_loss(far, torch.tensor([0]), kind="squared_hinge").backward()
    assert far.grad.abs().sum().item() == 0.0
    far.grad = None
    head_loss(far, torch.tensor([0])).backward()
    assert far.grad.abs().sum().item() > 0.0


def test_train_loss_switch_reaches_the_trainer():
    data = tiny_data(n_train=10)  # one batch: the epoch's loss is that batch's loss
    trainer = tiny_trainer(data, loss="squared_hinge")
    split = data["t"]["train"]
    with torch.no_grad():
        logits = trainer.model(*split.batch(np.arange(10)))["t"]
    expected = head_loss(logits, torch.from_numpy(split.labels), kind="squared_hinge").item()
    assert trainer.train_epoch() == pytest.approx(expected, rel=1e-6)


# -- weight averaging --------------------------------------------------------------------------


def test_ema_is_the_decay_weighted_average_of_the_steps():
    decay = 0.75
    trainer = tiny_trainer(ema=decay, epochs=1)  # 4 steps
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    _, weights = record_steps(trainer)
    trainer.train_epoch()
    assert len(weights) == 4
    # ema_4 = d^4 w_0 + sum_t d^(4-t) (1-d) w_t
    for name in ("lin.weight", "lin.bias", "running"):
        expected = decay ** 4 * start[name]
        for t, w in enumerate(weights, 1):
            expected = expected + decay ** (4 - t) * (1 - decay) * w[name]
        ema = trainer.ema_model.state_dict()[name]
        torch.testing.assert_close(ema, expected, rtol=1e-6, atol=1e-7)
        assert not torch.allclose(ema, trainer.model.state_dict()[name])
    # an integer buffer is copied, not averaged
    assert int(trainer.ema_model.calls) == int(trainer.model.calls) == 4
    assert not any(p.requires_grad for p in trainer.ema_model.parameters())


def test_ema_update_by_hand():
    trainer = tiny_trainer(ema=0.5)
    (average,) = [c for c in trainer.callbacks if isinstance(c, MovingAverage)]
    with torch.no_grad():
        trainer.ema_model.lin.bias.copy_(torch.tensor([0.0, 4.0]))
        trainer.model.lin.bias.copy_(torch.tensor([2.0, 0.0]))
        average.on_step(trainer)
        assert trainer.ema_model.lin.bias.tolist() == [1.0, 2.0]
        trainer.model.lin.bias.copy_(torch.tensor([3.0, 6.0]))
        average.on_step(trainer)
    assert trainer.ema_model.lin.bias.tolist() == [2.0, 4.0]
    assert trainer.model.lin.bias.tolist() == [3.0, 6.0]


def test_ema_weights_are_validated_and_kept():
    trainer = tiny_trainer(ema=0.9, epochs=1)
    history = trainer.fit()
    ema = trainer.ema_model.state_dict()
    # one epoch: its (averaged) weights are the best and end up in the model
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, ema[k])
    val = trainer.data["t"]["validation"]
    with torch.no_grad():
        logits = trainer.ema_model.eval()(*val.batch(np.arange(len(val))))["t"].numpy()
    assert history[0]["validation"]["t"] == classification_metrics(val.labels, logits)


# -- resume ------------------------------------------------------------------------------------


def test_resume_with_every_switch_on_is_exact(small_slice, tmp_path):
    config = from_dict(tiny_config(small_slice, epochs=3, patience=5, schedule="cosine",
                                   warmup=0.2, ema=0.9, label_smoothing=0.1))
    raws = load_datasets(config)
    full = train_full_and_cut(config, raws, tmp_path)
    ckpt = load_file(str(tmp_path / "cut" / "checkpoint.safetensors"))
    assert any(k.startswith("ema.") for k in ckpt)
    _, resumed = train_and_evaluate(config, raws, tmp_path / "cut", resume=True,
                                    log=lambda line: None)
    assert resumed == full
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def rows(run):
        lines = (tmp_path / run / "history.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if not k.endswith("seconds")}
                for line in lines]

    assert rows("cut") == rows("full") and len(rows("full")) == 3


def test_checkpoints_from_before_the_new_keys_still_resume():
    config = from_dict(tiny_config("x"))
    saved = config.to_dict()
    for key in ("schedule", "warmup", "label_smoothing", "ema"):
        del saved["train"][key]
    for key in ("pretrained", "embedding_mode"):
        del saved["model"][key]
    check_saved_config(config, saved)
    saved["train"]["lr"] = 1.0
    with pytest.raises(ConfigError, match="config differs"):
        check_saved_config(config, saved)


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, value", [("schedule", "linear"), ("warmup", 1.5), ("warmup", -0.1),
                                        ("ema", -0.1), ("ema", 1.0), ("label_smoothing", 1.0),
                                        ("label_smoothing", float("nan")),
                                        ("loss", "hinge")])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"config key 'train\.{key}' must"):
        from_dict({"tasks": {"t": {"dataset": "x"}}, "train": {key: value}})


def test_good_values_are_accepted():
    cfg = from_dict({"tasks": {"t": {"dataset": "x"}},
                     "train": {"schedule": "onecycle", "warmup": 0.3, "ema": 0.999,
                               "label_smoothing": 0}})
    assert (cfg.train.schedule, cfg.train.warmup, cfg.train.ema) == ("onecycle", 0.3, 0.999)
    assert cfg.train.label_smoothing == 0.0 and isinstance(cfg.train.label_smoothing, float)


class Recorder(Callback):
    """Replaces the loss of every batch with zero (no gradient: Adam leaves the weights) and
    records the moments it is told about."""

    def __init__(self):
        self.seen = []

    def loss(self, trainer, task, logits, y):
        self.seen.append(("loss", trainer.step))
        return logits.sum() * 0.0

    def on_epoch_start(self, trainer):
        self.seen.append(("epoch start", trainer.epoch))

    def on_step(self, trainer):
        self.seen.append(("step", trainer.step))

    def on_batch_end(self, trainer, rows):
        self.seen.append(("batch end", trainer.batch_in_epoch))

    def on_epoch_end(self, trainer):
        self.seen.append(("epoch end", trainer.epoch))


def test_callbacks_combine_on_the_one_loop():
    """A replaced loss, the moving average and step checkpoints run together on one trainer."""
    recorder = Recorder()
    cfg = from_dict({"tasks": {"t": {"dataset": "x"}},
                     "train": {"epochs": 1, "batch_size": 10, "lr": 0.1, "max_norm": 0,
                               "threads": 1, "optimizer": "adam", "ema": 0.5}})
    torch.manual_seed(0)
    trainer = Trainer(cfg, Tiny(), tiny_data(), log=lambda line: None, callbacks=[recorder])
    start = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.ema_model.lin.bias.data.fill_(8.0)  # the average moves towards the weights
    trainer.train_epoch()
    assert recorder.seen == [("epoch start", 0)] + [
        event for step in range(1, 5)
        for event in (("loss", step - 1), ("step", step), ("batch end", step))] + [
        ("epoch end", 0)]
    for k, v in trainer.model.named_parameters():  # a zero loss: the weights did not move
        assert torch.equal(v, start[k]), k
    bias = start["lin.bias"]
    assert torch.allclose(trainer.ema_model.lin.bias, bias + (8.0 - bias) / 16)  # 0.5 ** 4
    assert [type(c).__name__ for c in trainer.callbacks] == [
        "MovingAverage", "ProgressBar", "Recorder"]
