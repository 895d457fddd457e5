"""Studies built on the library, at the edge of the package: nothing in the core imports them.

- :mod:`.compare`: ``textcnn compare``, one conv core on text and on images, in one report
  (:mod:`.cli` declares the verb);
- :mod:`.parity`: the measured differences of the 1D and 2D cores the report shows;
- :mod:`.peers`: the linear peer baselines (TF-IDF + logistic regression / LinearSVC, fastText);
- :mod:`.reproduce`: a textcnn config over seeds (test split) or folds (cross-validation).

:func:`register` adds the ``compare`` verb to the command line.
"""

from __future__ import annotations


def register() -> None:
    """Register the ``compare`` verb (listed after ``export``)."""
    from ...verbs import Verb, register_verb
    from .cli import EXAMPLE, compare_arguments, compare_command

    register_verb("compare", Verb(compare_arguments, compare_command, EXAMPLE), after="export")
