"""Training: fit a model on one or more tasks, with early stopping and exact resume.

``batching`` cuts length-bucketed batches and plans each epoch (the split and batch types it
cuts are :mod:`textcnn.data`'s: an in-memory :class:`~textcnn.data.batch.Encoded`, or a
streamed split that yields its own batches), ``schedule`` gives the learning
rate of every step, ``stopping`` picks the best epoch and says when and why a run ends,
``checkpoint`` writes and reads the resume file, ``distributed`` splits the work across
torchrun's processes (DDP), ``optimizers`` steps Adam / AdamW with torch's fused kernel (without
importing ``torch._dynamo``), ``callbacks`` holds the variations of a step (EMA, max-norm, step
checkpoints, progress, a replaced loss) and ``trainer`` runs the one loop.
"""

from ..data.batch import Encoded, sorted_batches, to_tensors
from .batching import batches_per_task, epoch_plan, steps_per_epoch, train_batches
from .callbacks import Callback
from .checkpoint import (
    CHECKPOINT,
    TrainingState,
    read_checkpoint,
    unpack_checkpoint,
    write_checkpoint,
)
from .distributed import World, current_world, session
from .schedule import lr_factor
from .stopping import STOP_REASONS, StopRule, balanced_weights, reported, selection_score
from .trainer import Trainer, TrainingDiverged

__all__ = [
    "CHECKPOINT", "STOP_REASONS", "Callback", "Encoded", "StopRule", "Trainer", "TrainingDiverged",
    "TrainingState", "World", "balanced_weights", "batches_per_task", "current_world",
    "epoch_plan", "lr_factor", "read_checkpoint", "reported", "selection_score", "session",
    "sorted_batches", "steps_per_epoch", "to_tensors", "train_batches", "unpack_checkpoint",
    "write_checkpoint",
]
