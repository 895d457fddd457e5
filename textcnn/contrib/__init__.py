"""Research at the edge of the package: distillation (:mod:`.distill`) and the studies
(:mod:`.studies`: the text-vs-image compare report, the peer baselines, reproductions, the
parity measurements).

The boundary is one-way. Nothing in the core imports this package; each part here plugs into
the core through its public hooks, the ones any third-party part could use:

- a config section and its rules (:func:`textcnn.config.register_section`; ``teacher:`` and
  ``distill:``) and a switch of the Python API (:func:`textcnn.config.register_switch`;
  ``TextCNNClassifier(teacher=...)``);
- a CLI verb (:func:`textcnn.verbs.register_verb`; ``teach``, ``compare``) and options of
  ``train`` (:func:`textcnn.verbs.register_train_option`; ``--teacher``);
- the data of a run (:func:`textcnn.modality.register_modality_chooser`; the student's widened
  training split), what wraps its training (:func:`textcnn.runs.register_run_context`;
  fine-tuning a teacher first) and a training callback the data brings
  (:class:`textcnn.training.Callback`; the distillation loss).

The composition root is the package's ``__init__``: ``import textcnn`` ends by calling
:func:`install`, so every door (the ``textcnn`` command, ``python -m textcnn``, torchrun's
processes, the Python API, a config read from a model folder) sees the same sections and verbs,
and the resolved ``config.json`` of a distilled run keeps its ``distill`` section. Registering
imports only the light modules (settings classes, argument declarations); what a part runs
(``transformers``, the figures) is imported when it runs. :func:`install` is idempotent.
"""

from __future__ import annotations


def install() -> None:
    """Register the shipped parts (distillation, the studies) with the core's hooks."""
    from . import distill, studies

    distill.register()
    studies.register()
