"""Knowledge distillation: fine-tune a transformer teacher (``teacher``), cache its logits on
the training texts and their augmentations (``augment``, ``cache``), and train any textcnn text
model on labels plus soft targets (``student``, ``loss``). Needs ``transformers`` (the
``distill`` extra) only to fine-tune or run a teacher.

:func:`register` plugs it into the core: the ``teacher:`` and ``distill:`` config sections, the
``teach`` verb and ``train --teacher``, the student's data (a run with ``distill.teachers`` or
``distill.teacher``) and the teacher fine-tuned before a ``distill.teacher`` run trains.
"""

from __future__ import annotations


def _student_data(config):
    """The student's modality for a distilled run, else None."""
    if config.distill.teachers or config.distill.teacher:
        from .student import DistillModality

        return DistillModality(config.tokenizer.sample)
    return None


def _teacher_switch(name: str) -> list[str]:
    from .switch import teacher_overrides

    return teacher_overrides(name)


def _run_with_teachers(config, datasets, output, log, resume):
    from .switch import fine_tuned_teachers

    return fine_tuned_teachers(config, datasets, output, log, resume)


def register() -> None:
    """Register distillation's config sections, verbs, switch, data and run context."""
    from ...config import register_section, register_switch
    from ...modality import register_modality_chooser
    from ...runs import register_run_context
    from ...verbs import TrainOption, Verb, register_train_option, register_verb
    from . import cli
    from .config import DistillConfig, TeacherConfig, check_distill

    register_section("teacher", TeacherConfig)
    register_section("distill", DistillConfig, rules=(check_distill,))
    register_switch("teacher", _teacher_switch)
    register_verb("teach", Verb(cli.teach_arguments, cli.teach, cli.EXAMPLE))
    register_train_option(TrainOption(cli.switch_arguments, cli.switch_overrides,
                                      cli.no_resume))
    register_modality_chooser(_student_data)
    register_run_context(_run_with_teachers)
