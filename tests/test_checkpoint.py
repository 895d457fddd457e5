"""The checkpoint file: what it stores once, and what it reads back."""

import torch
from safetensors import safe_open

from textcnn.training.checkpoint import (
    TrainingState,
    read_checkpoint,
    unpack_checkpoint,
    write_checkpoint,
)


def test_best_tensors_equal_to_the_current_ones_are_written_once(tmp_path):
    table = torch.randn(50, 8)  # a frozen embedding table: the best and the current are equal
    state = TrainingState(
        model={"embedding.weight": table, "head.weight": torch.ones(2, 8)},
        best={"embedding.weight": table.clone(), "head.weight": torch.zeros(2, 8)},
        ema={}, optimizer={"state": {}, "param_groups": []}, torch_rng=torch.get_rng_state(),
        numpy_rng={}, epoch=2, best_epoch=1, best_score=0.5, history=[], optimizer_step=8)
    path = write_checkpoint(tmp_path / "checkpoint.safetensors", state)
    with safe_open(str(path), "pt") as fh:
        keys = set(fh.keys())
    assert "best.embedding.weight" not in keys and "best.head.weight" in keys
    back = unpack_checkpoint(*read_checkpoint(path))
    assert torch.equal(back.best["embedding.weight"], table)
    assert torch.equal(back.best["head.weight"], torch.zeros(2, 8))
    assert torch.equal(back.model["head.weight"], torch.ones(2, 8))
