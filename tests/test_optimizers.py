"""FusedAdam: torch.optim's fused Adam / AdamW bit for bit, its state_dict format, its hooks."""

import pytest
import torch

from textcnn.training.optimizers import FusedAdam


def pair(seed=0):
    torch.manual_seed(seed)
    shapes = [(4, 3), (3,), (5, 2)]
    ours = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    return ours, theirs


def set_grads(ours, theirs, step):
    g = torch.Generator().manual_seed(step)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if i == 2 and step % 3 == 1:  # a parameter without a gradient at some steps
            a.grad = b.grad = None
            continue
        grad = torch.randn(a.shape, generator=g)
        a.grad, b.grad = grad.clone(), grad.clone()


@pytest.mark.parametrize("decoupled, cls", [(True, torch.optim.AdamW), (False, torch.optim.Adam)])
def test_steps_equal_torch_fused_kernels_exactly(decoupled, cls):
    ours, theirs = pair()
    opt = FusedAdam(ours, lr=0.01, weight_decay=0.1, decoupled=decoupled)
    ref = cls(theirs, lr=0.01, weight_decay=0.1, fused=True)
    for step in range(7):
        set_grads(ours, theirs, step)
        opt.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = 0.01 / (step + 1)  # a schedule
        opt.step()
        ref.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


def test_state_dicts_cross_between_torch_and_ours():
    ours, theirs = pair(1)
    ref = torch.optim.AdamW(theirs, lr=0.01, weight_decay=0.0, fused=True)
    for step in range(3):
        set_grads(ours, theirs, step)
        ref.step()
    for a, b in zip(ours, theirs):
        a.data.copy_(b.data)
    opt = FusedAdam(ours, lr=0.5)  # lr and the moments come from torch's state
    opt.load_state_dict(ref.state_dict())
    assert opt.param_groups[0]["lr"] == 0.01
    for step in range(3, 6):
        set_grads(ours, theirs, step)
        opt.step()
        ref.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    back = torch.optim.AdamW(theirs, lr=0.01, weight_decay=0.0, fused=True)
    back.load_state_dict(opt.state_dict())  # and ours loads into torch's
    assert back.state_dict()["state"][0]["step"].item() == 6.0


def test_post_step_hooks_run_after_each_step_until_removed():
    ours, _ = pair()
    opt = FusedAdam(ours, lr=0.01)
    seen = []
    handle = opt.register_step_post_hook(lambda o, args, kwargs: seen.append(
        (o is opt, o.state[ours[0]]["step"].item())))
    for p in ours:
        p.grad = torch.ones_like(p)
    opt.step()
    opt.step()
    handle.remove()
    opt.step()
    assert seen == [(True, 1.0), (True, 2.0)]
    opt.zero_grad()
    assert all(p.grad is None for p in ours)
