"""Adam and AdamW for the trainer, without what ``torch.optim`` costs at start-up.

``torch.optim``'s base class imports ``torch._dynamo`` the first time any optimizer is built,
stepped or zeroed: 2.4 s of the 28 s the default recipe takes on 2 CPU cores (BENCHMARKS.md).
:class:`FusedAdam` calls torch's public functional Adam (``torch.optim.adam.adam``) with
``fused=True``, the kernel ``torch.optim.AdamW(fused=True)`` runs (one pass over each parameter
per step), without the base class: it leaves the same weights bit for bit, and it reads and writes
``torch.optim``'s ``state_dict`` format, so a checkpoint resumes with either. Post-step hooks
(:meth:`FusedAdam.register_step_post_hook`) are called as ``torch.optim`` calls them.

Example
-------
>>> import torch
>>> weight = torch.nn.Parameter(torch.ones(3))
>>> reference = torch.nn.Parameter(torch.ones(3))
>>> ours = FusedAdam([weight], lr=0.1)
>>> theirs = torch.optim.AdamW([reference], lr=0.1, weight_decay=0.0, fused=True)
>>> for _ in range(3):
...     weight.grad = torch.tensor([1.0, -2.0, 0.5])
...     reference.grad = torch.tensor([1.0, -2.0, 0.5])
...     ours.step()
...     theirs.step()
>>> torch.equal(weight, reference), ours.state_dict()["state"][0]["step"].item()
(True, 3.0)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch
from torch.optim.adam import adam
from torch.utils.hooks import RemovableHandle

Hook = Callable[["FusedAdam", tuple, dict], None]


class FusedAdam:
    """Adam (``decoupled=False``: weight decay added to the gradient) or AdamW (decoupled) over
    one group of parameters, stepped by torch's fused kernel.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
        What it updates; parameters without a gradient at a step are left as they are.
    lr, weight_decay, betas, eps
        As ``torch.optim.AdamW``'s (its weight decay default, 0.01, is not copied: 0 here).
    decoupled : bool
        AdamW (True) or Adam (False).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 decoupled: bool = True):
        self.params = list(params)
        self.param_groups = [{
            "params": self.params, "lr": lr, "betas": tuple(betas), "eps": eps,
            "weight_decay": weight_decay, "amsgrad": False, "maximize": False, "foreach": None,
            "capturable": False, "differentiable": False, "fused": True,
            "decoupled_weight_decay": decoupled}]
        self.state: dict[torch.nn.Parameter, dict[str, torch.Tensor]] = {}
        self._post_hooks: OrderedDict[int, Hook] = OrderedDict()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every gradient (``set_to_none=False``: zero them in place)."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient, then the post-step hooks."""
        group = self.param_groups[0]
        live = [p for p in self.params if p.grad is not None]
        for p in live:
            if p not in self.state:
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p),
                                 "exp_avg_sq": torch.zeros_like(p)}
        if live:  # torch's public functional Adam, fused: it counts the steps and updates
            states = [self.state[p] for p in live]
            beta1, beta2 = group["betas"]
            adam(live, [p.grad for p in live], [s["exp_avg"] for s in states],
                 [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states],
                 fused=True, decoupled_weight_decay=group["decoupled_weight_decay"],
                 amsgrad=False, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                 weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                 grad_scale=None, found_inf=None)
        for hook in list(self._post_hooks.values()):
            hook(self, (), {})

    def register_step_post_hook(self, hook: Hook) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` after every step; ``.remove()`` the handle to
        stop."""
        handle = RemovableHandle(self._post_hooks)
        self._post_hooks[handle.id] = hook
        return handle

    def state_dict(self) -> dict:
        """``torch.optim``'s format: per-parameter state keyed by position, and the group."""
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        index = {p: i for i, p in enumerate(self.params)}
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take the state of a :meth:`state_dict` (ours or ``torch.optim.Adam[W]``'s)."""
        saved = state_dict["param_groups"][0]
        group = self.param_groups[0]
        for key in ("lr", "eps", "weight_decay"):
            group[key] = saved.get(key, group[key])
        group["betas"] = tuple(saved.get("betas", group["betas"]))
        self.state = {}
        for i, entry in state_dict["state"].items():
            p = self.params[int(i)]
            self.state[p] = {
                "step": torch.as_tensor(entry["step"], dtype=torch.float32,
                                        device=p.device).reshape(()).clone(),
                "exp_avg": entry["exp_avg"].to(p.device, p.dtype).clone(),
                "exp_avg_sq": entry["exp_avg_sq"].to(p.device, p.dtype).clone()}
