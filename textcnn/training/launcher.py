"""What ``textcnn train --nproc N`` runs: torchrun's agent, with a process that failed reported
in one line instead of the agent's traceback.

The processes' own messages (an ``error:`` line, how to resume) come first; the agent then
names the first process that ended badly and how (exit code or signal), and exits 1.

It takes torchrun's arguments::

    python -m textcnn.training.launcher --standalone --nproc-per-node 2 -m textcnn train c.yaml
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Run torchrun with ``argv`` (its own arguments); 0, or 1 after one line on stderr."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # torchrun sets this for its processes anyway, and warns in a banner when it has to
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = (f"signal {failure.signal_name()}" if failure.exitcode < 0
               else f"exit code {failure.exitcode}")
        print(f"error: training process {rank} of {args.nproc_per_node} ended with {how} first "
              "(the lines above say why)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
