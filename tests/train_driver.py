"""A training process for the DDP and fault tests (run directly or under torchrun).

``python tests/train_driver.py CONFIG OUTPUT [--resume] [--kill-after STEP] [--kill-rank R]``
trains with :func:`textcnn.train` and writes this rank's final weights to
``OUTPUT/weights.rank<R>.safetensors``. With ``--kill-after``, rank ``R`` (default 0) sends
itself SIGKILL right after its optimizer step STEP: a kill -9 at a moment the test chooses.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from safetensors.torch import save_file

from textcnn import load_config, train
from textcnn.training.optimizers import FusedAdam


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("output")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--kill-rank", type=int, default=0)
    args = parser.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    steps = [0]

    step = FusedAdam.step  # the configs the tests use train with AdamW

    def step_then_maybe_die(optimizer):
        step(optimizer)
        steps[0] += 1
        if steps[0] == args.kill_after and rank == args.kill_rank:
            os.kill(os.getpid(), signal.SIGKILL)

    if args.kill_after:
        FusedAdam.step = step_then_maybe_die
    clf = train(load_config(args.config), output=args.output, resume=args.resume,
                log=lambda line: None)
    state = {k: v.detach().cpu().contiguous() for k, v in clf.model.state_dict().items()}
    save_file(state, str(Path(args.output) / f"weights.rank{rank}.safetensors"))


if __name__ == "__main__":
    main()
