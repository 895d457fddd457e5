"""The peers' optional packages (the ``bench`` extra): imported when a peer runs, with an error
that names the extra when one is missing.

Example
-------
>>> importable("numpy"), importable("no_such_module")
(True, False)
>>> import_bench_extra("no_such_module", "Nothing")
Traceback (most recent call last):
ImportError: Nothing is not installed (pip install 'textcnn[bench]')
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType


def import_bench_extra(module: str, what: str) -> ModuleType:
    """Import ``module`` of the ``bench`` extra, or say how to install it (``what``: its name)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} is not installed (pip install 'textcnn[bench]')") from None


def importable(module: str) -> bool:
    """Whether ``module`` can be imported (looked up, not imported)."""
    return importlib.util.find_spec(module) is not None
