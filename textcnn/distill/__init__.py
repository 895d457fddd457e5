"""Knowledge distillation: fine-tune a transformer teacher (``teacher``), cache its logits on
the training texts and their augmentations (``augment``, ``cache``), and train any textcnn text
model on labels plus soft targets (``student``, ``loss``). Needs ``transformers`` (the
``distill`` extra) only to fine-tune or run a teacher."""
