"""``python -m textcnn``: the ``textcnn`` command, so ``torchrun -m textcnn train ...`` works."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
